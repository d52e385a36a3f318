/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the app with hot reload and sends the API, the live
// feed and the docs to a running gateway (`make up`, or SMSOPS_GATEWAY).
const gateway = process.env.SMSOPS_GATEWAY ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The gateway's Content-Security-Policy allows no inline script or style.
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  server: {
    proxy: {
      "/api/v1/live": { target: gateway.replace(/^http/, "ws"), ws: true },
      "/api": gateway,
      "/docs": gateway,
    },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
