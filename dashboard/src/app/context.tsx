import { createContext, useContext, type Dispatch } from "react";
import type { Client } from "../api/client";
import type { Me } from "../api/types";
import type { Action, LiveState } from "../live/reducer";

export type { Window } from "../lib/series";
import type { Window } from "../lib/series";

export interface App {
  client: Client;
  me: Me;
  /// What this role may do: a control it may not use is never shown.
  may: { send: boolean; admin: boolean };
  live: LiveState;
  dispatch: Dispatch<Action>;
  window: Window;
  setWindow(window: Window): void;
  /// Reloads what the live feed keeps (after an action of this page).
  reload(): void;
  /// Shows what an action's error means, as a notice.
  report(err: unknown): void;
  /// Asks before a step that cannot be undone or overrides a safeguard.
  confirm(text: string, ok: string): Promise<boolean>;
  signOut(): void;
}

export const AppContext = createContext<App | null>(null);

export function useApp(): App {
  const app = useContext(AppContext);
  if (!app) throw new Error("useApp outside the signed-in app");
  return app;
}
