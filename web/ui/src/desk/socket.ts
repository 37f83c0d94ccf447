// socket.ts keeps the desk's websocket open: it reconnects with backoff and
// resumes from the last sequence number it saw, so events missed during a
// reconnect arrive once; a "resync" answer makes the app reload its data.
import { CMD, EV } from "./api";

export interface Envelope {
  type: string;
  seq?: number;
  data?: any;
}

type Handler = (data: any, env: Envelope) => void;
export type SocketState = "connecting" | "open" | "closed";

export class Socket {
  private ws?: WebSocket;
  private handlers = new Map<string, Set<Handler>>();
  private stateHandlers = new Set<(s: SocketState) => void>();
  private lastSeq = 0;
  private attempt = 0;
  private stopped = false;
  private timer?: number;
  state: SocketState = "closed";

  constructor(private path: string) {}

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.close(1000, "logout");
    this.setState("closed");
  }

  on(type: string, h: Handler): () => void {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(h);
    return () => set!.delete(h);
  }

  onState(h: (s: SocketState) => void): () => void {
    this.stateHandlers.add(h);
    return () => this.stateHandlers.delete(h);
  }

  send(type: string, data?: unknown): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ type, data }));
    return true;
  }

  private setState(s: SocketState) {
    this.state = s;
    this.stateHandlers.forEach((h) => h(s));
  }

  private connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${proto}//${location.host}${this.path}${this.lastSeq ? `?last_seq=${this.lastSeq}` : ""}`;
    this.setState("connecting");
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.setState("open");
      if (this.lastSeq) this.send(CMD.resume, { last_seq: this.lastSeq });
    };
    ws.onmessage = (ev) => {
      let env: Envelope;
      try {
        env = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (typeof env.seq === "number" && env.seq > 0) {
        // A resumed stream may repeat what we already handled; drop it.
        if (env.seq <= this.lastSeq && env.type !== EV.resync) return;
        this.lastSeq = env.seq;
      }
      if (env.type === EV.resync) this.lastSeq = env.data?.seq ?? env.seq ?? 0;
      this.handlers.get(env.type)?.forEach((h) => h(env.data, env));
      this.handlers.get("*")?.forEach((h) => h(env.data, env));
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.setState("closed");
      if (this.stopped || ev.code === 4401 || ev.code === 1008) return;
      const delay = Math.min(15000, 500 * 2 ** this.attempt++) * (0.7 + Math.random() * 0.6);
      this.timer = window.setTimeout(() => this.connect(), delay);
    };
  }
}
