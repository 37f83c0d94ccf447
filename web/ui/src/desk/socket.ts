// socket.ts keeps the desk's websocket open (web/PROTOCOL.md). It follows
// streams ("agent:42", "ticket:9"), remembers the last sequence number of
// each, and after a reconnect resumes every stream from there, so missed
// events arrive exactly once. A "resync" for a stream makes the app reload
// what it shows. Client requests get an ack or an error, matched by id.
//
// Streams the app follows for a while (the ticket on screen, the stream of
// the list on screen) start "from now": follow() resolves once the server
// has answered with the stream's head ("subscribed"), and the app then
// reloads what it shows over REST. Every change up to the head is
// committed, so the reload holds it; later ones arrive as events. A follow
// made while offline resolves when it lands on connect.

export interface Envelope {
  type: string;
  stream?: string;
  seq?: number;
  id?: string;
  data?: any;
}

type Handler = (data: any, env: Envelope) => void;
export type SocketState = "connecting" | "open" | "closed";

export class SocketError extends Error {
  constructor(public code: string, message: string, public field?: string) {
    super(message);
  }
}

export class Socket {
  private ws?: WebSocket;
  private handlers = new Map<string, Set<Handler>>();
  private stateHandlers = new Set<(s: SocketState) => void>();
  /** stream → last seq handled (-1: follow from now, nothing seen yet). */
  private streams = new Map<string, number>();
  /** Streams the app asked for; the others are the server's defaults. */
  private followed = new Set<string>();
  private refs = new Map<string, number>();
  /** Followed from now, waiting for the server's "subscribed". */
  private fresh = new Map<string, { resolve: () => void; reject: (e: Error) => void }[]>();
  /** Unfollowed by the app: frames still in flight for them are dropped. */
  private left = new Set<string>();
  /** The account of the signed-in user (from the resume ack), for stream
   * names such as "account:7"; undefined until the first connect. */
  accountId?: number;
  private pending = new Map<string, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private nextId = 1;
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
    this.ws?.close(1000, "signed out");
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

  /** Follows a stream from now on (e.g. the ticket or list on screen).
   * Counted: every follow needs its own unfollow. Resolves when the server
   * has subscribed it (events after that follow); rejects when the server
   * refuses it (not allowed, unknown). */
  follow(stream: string): Promise<void> {
    const n = this.refs.get(stream) ?? 0;
    this.refs.set(stream, n + 1);
    const p = new Promise<void>((resolve, reject) => {
      if ((this.streams.get(stream) ?? -1) >= 0) return resolve();
      const w = this.fresh.get(stream) ?? [];
      w.push({ resolve, reject });
      this.fresh.set(stream, w);
    });
    p.catch(() => {}); // callers that do not wait are not told
    if (n > 0 || this.streams.has(stream)) return p;
    this.left.delete(stream);
    this.followed.add(stream);
    this.streams.set(stream, -1);
    if (this.ws?.readyState === WebSocket.OPEN) this.resume([{ stream }]);
    return p; // not connected: the resume on connect follows it
  }

  unfollow(stream: string) {
    const n = (this.refs.get(stream) ?? 0) - 1;
    if (n > 0) {
      this.refs.set(stream, n);
      return;
    }
    this.refs.delete(stream);
    if (!this.followed.delete(stream)) return;
    this.streams.delete(stream);
    this.left.add(stream);
    this.fresh.get(stream)?.forEach((w) => w.reject(new SocketError("cancelled", "No longer followed")));
    this.fresh.delete(stream);
    this.request("unsubscribe", { stream }).catch(() => {});
  }

  /** Resumes streams; a stream the server refuses is dropped (its
   * followers told) and the others are resumed without it. */
  private resume(streams: { stream: string; last_seq?: number }[]) {
    this.request("resume", { streams }).then((d) => this.setAccount(d), (e: SocketError) => {
      const m = /^streams\[(\d+)\]/.exec(e.field ?? "");
      const bad = m ? streams[Number(m[1])]?.stream : streams.length === 1 ? streams[0].stream : undefined;
      if (e.code === "unavailable" || !bad) return; // reconnecting resumes them
      this.refs.delete(bad);
      this.followed.delete(bad);
      this.streams.delete(bad);
      this.fresh.get(bad)?.forEach((w) => w.reject(e));
      this.fresh.delete(bad);
      const rest = streams.filter((s) => s.stream !== bad);
      if (rest.length) this.resume(rest);
    });
  }

  private setAccount(d: any) {
    if (typeof d?.account_id !== "number" || d.account_id === this.accountId) return;
    this.accountId = d.account_id;
    this.emit("account", { type: "account", data: d });
  }

  /** Sends a client message and resolves with its ack's data. */
  request(type: string, data?: unknown): Promise<any> {
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      if (this.ws?.readyState !== WebSocket.OPEN) {
        reject(new SocketError("unavailable", "Not connected. Reconnecting…"));
        return;
      }
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ type, id, data }));
    });
  }

  /** Fire and forget (typing indicators). */
  send(type: string, data?: unknown): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ type, id: String(this.nextId++), data }));
    return true;
  }

  private setState(s: SocketState) {
    this.state = s;
    this.stateHandlers.forEach((h) => h(s));
  }

  private emit(type: string, env: Envelope) {
    this.handlers.get(type)?.forEach((h) => h(env.data ?? {}, env));
  }

  private connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    this.setState("connecting");
    const ws = new WebSocket(`${proto}//${location.host}${this.path}`);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.left.clear(); // a new connection has nothing in flight
      this.setState("open");
      // First connect: the server's default streams for this user, from now.
      // Reconnect: every stream we follow, from the last event we handled.
      const streams = [...this.streams].map(([stream, seq]) => (seq >= 0 ? { stream, last_seq: seq } : { stream }));
      const haveDefaults = [...this.streams.keys()].some((k) => !this.followed.has(k));
      if (!haveDefaults) this.request("resume", { streams: [] }).then((d) => this.setAccount(d), () => {});
      if (streams.length) this.resume(streams);
    };
    ws.onmessage = (ev) => {
      let env: Envelope;
      try {
        env = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (env.type === "ack" || (env.type === "error" && env.id && this.pending.has(env.id))) {
        const p = env.id ? this.pending.get(env.id) : undefined;
        if (!p) return;
        this.pending.delete(env.id!);
        if (env.type === "ack") p.resolve(env.data);
        else p.reject(new SocketError(env.data?.code ?? "error", env.data?.message ?? "Request failed", env.data?.field));
        return;
      }
      const s = env.stream;
      if (s && this.left.has(s)) return; // in flight when the app unfollowed it
      if ((env.type === "subscribed" || env.type === "resync") && s) {
        this.streams.set(s, env.seq ?? 0);
        const waiting = this.fresh.get(s);
        this.fresh.delete(s);
        if (env.type === "resync") this.emit("resync", env);
        waiting?.forEach((w) => w.resolve());
        return;
      }
      if (s && typeof env.seq === "number" && env.seq > 0) {
        const last = this.streams.get(s) ?? -1;
        if (env.seq <= last) return; // already handled before a reconnect
        this.streams.set(s, env.seq);
      }
      this.emit(env.type, env);
      this.emit("*", env);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.setState("closed");
      for (const p of this.pending.values()) p.reject(new SocketError("unavailable", "Connection lost"));
      this.pending.clear();
      if (this.stopped || ev.code === 4001) return;
      const delay = Math.min(15000, 500 * 2 ** this.attempt++) * (0.7 + Math.random() * 0.6);
      this.timer = window.setTimeout(() => this.connect(), delay);
    };
  }
}
