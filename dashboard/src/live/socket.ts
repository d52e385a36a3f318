// The live feed's connection: the token goes in the first message (not the
// URL, which proxies log), a dropped socket comes back with backoff, and a
// fresh token is handed to an open socket so it outlives the old one.
import type { LiveMessage } from "./reducer";

export interface FeedHandlers {
  token(): string | null;
  /// Messages as they arrived since the last call, oldest first.
  onMessages(messages: LiveMessage[]): void;
  onState(state: "live" | "down"): void;
  /// The socket was closed for its token (4001): renew before coming back.
  onTokenEnded(): Promise<void>;
}

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000, 30000];
/// Messages that arrive together are applied together, one render for many.
const BATCH_MS = 16;

export function backoff(attempt: number, random: number = Math.random()): number {
  const base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)] ?? 30000;
  return Math.round(base * (0.75 + random * 0.5));
}

export class Feed {
  private socket: WebSocket | null = null;
  private attempt = 0;
  private closed = false;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private queue: LiveMessage[] = [];
  private flush: ReturnType<typeof setTimeout> | null = null;
  private readonly handlers: FeedHandlers;

  constructor(handlers: FeedHandlers) {
    this.handlers = handlers;
    this.open();
  }

  /// Gives the open socket a renewed token.
  renewed(token: string): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ token }));
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.flush) clearTimeout(this.flush);
    this.socket?.close(1000);
    this.socket = null;
  }

  private open(): void {
    const token = this.handlers.token();
    if (this.closed || !token) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/api/v1/live`);
    this.socket = socket;
    socket.addEventListener("open", () => socket.send(JSON.stringify({ token: this.handlers.token() })));
    socket.addEventListener("message", (event: MessageEvent<string>) => {
      let message: LiveMessage;
      try {
        message = JSON.parse(event.data) as LiveMessage;
      } catch {
        return;
      }
      if (message.type === "ready") {
        this.attempt = 0;
        this.handlers.onState("live");
      }
      this.queue.push(message);
      this.flush ??= setTimeout(() => {
        this.flush = null;
        const batch = this.queue;
        this.queue = [];
        this.handlers.onMessages(batch);
      }, BATCH_MS);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket || this.closed) return;
      this.socket = null;
      this.handlers.onState("down");
      const again = () => {
        this.retry = setTimeout(() => this.open(), backoff(this.attempt));
        this.attempt += 1;
      };
      if (event.code === 4001) void this.handlers.onTokenEnded().finally(again);
      else again();
    });
  }
}
