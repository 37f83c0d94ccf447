import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Socket, SocketError } from "./socket";

// FakeWebSocket records what the client sends and lets a test play the server.
class FakeWebSocket {
  static OPEN = 1;
  static all: FakeWebSocket[] = [];
  readyState = 0;
  sent: any[] = [];
  onopen?: () => void;
  onmessage?: (ev: { data: string }) => void;
  onclose?: (ev: { code: number }) => void;
  constructor(public url: string) {
    FakeWebSocket.all.push(this);
  }
  send(s: string) {
    this.sent.push(JSON.parse(s));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  serve(frame: object) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

beforeEach(() => {
  FakeWebSocket.all = [];
  vi.useFakeTimers();
  vi.stubGlobal("WebSocket", FakeWebSocket);
  vi.stubGlobal("location", { protocol: "http:", host: "desk.test" });
  vi.stubGlobal("window", globalThis);
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

function connected() {
  const s = new Socket("/ws/agent");
  s.start();
  const ws = FakeWebSocket.all.at(-1)!;
  ws.open();
  return { s, ws };
}

describe("Socket", () => {
  it("asks for the default streams on the first connect", () => {
    const { ws } = connected();
    expect(ws.url).toBe("ws://desk.test/ws/agent");
    expect(ws.sent).toEqual([{ type: "resume", id: expect.any(String), data: { streams: [] } }]);
  });

  it("delivers each event once and resumes every stream from its last seq", () => {
    const { s, ws } = connected();
    const got: number[] = [];
    s.on("offer", (d) => got.push(d.n));
    ws.serve({ type: "subscribed", stream: "agent:7", seq: 3 });
    ws.serve({ type: "offer", stream: "agent:7", seq: 4, data: { n: 4 } });
    ws.serve({ type: "offer", stream: "agent:7", seq: 4, data: { n: 4 } });
    ws.serve({ type: "offer", stream: "agent:7", seq: 5, data: { n: 5 } });
    s.follow("ticket:9");
    ws.serve({ type: "subscribed", stream: "ticket:9", seq: 20 });
    ws.drop();
    vi.advanceTimersByTime(20000);
    const ws2 = FakeWebSocket.all.at(-1)!;
    expect(ws2).not.toBe(ws);
    ws2.open();
    expect(ws2.sent).toEqual([
      {
        type: "resume", id: expect.any(String),
        data: { streams: [{ stream: "agent:7", last_seq: 5 }, { stream: "ticket:9", last_seq: 20 }] },
      },
    ]);
    // The server replays from 5: a repeat of 5 is dropped, 6 is new.
    ws2.serve({ type: "offer", stream: "agent:7", seq: 5, data: { n: 5 } });
    ws2.serve({ type: "offer", stream: "agent:7", seq: 6, data: { n: 6 } });
    expect(got).toEqual([4, 5, 6]);
  });

  it("takes a resync's seq as the new position and tells the app", () => {
    const { s, ws } = connected();
    const resyncs: string[] = [];
    s.on("resync", (_d, env) => resyncs.push(env.stream!));
    ws.serve({ type: "subscribed", stream: "agent:7", seq: 3 });
    ws.serve({ type: "resync", stream: "agent:7", seq: 4000 });
    const got: number[] = [];
    s.on("offer", (d) => got.push(d.n));
    ws.serve({ type: "offer", stream: "agent:7", seq: 4000, data: { n: 4000 } });
    ws.serve({ type: "offer", stream: "agent:7", seq: 4001, data: { n: 4001 } });
    expect(resyncs).toEqual(["agent:7"]);
    expect(got).toEqual([4001]);
  });

  it("matches acks and errors to requests", async () => {
    const { s, ws } = connected();
    const ok = s.request("offer.accept", { offer_id: 5 });
    const bad = s.request("chat.send", { ticket_id: 9, body: "" });
    const [, a, b] = ws.sent;
    ws.serve({ type: "error", id: b.id, data: { code: "invalid", message: "a message cannot be empty", field: "body" } });
    ws.serve({ type: "ack", id: a.id, data: { done: true } });
    await expect(ok).resolves.toEqual({ done: true });
    await expect(bad).rejects.toMatchObject({ code: "invalid", field: "body" });
    await expect(bad).rejects.toBeInstanceOf(SocketError);
  });

  it("fails pending requests when the connection drops", async () => {
    const { s, ws } = connected();
    const p = s.request("presence.set", { state: "available" });
    ws.drop();
    await expect(p).rejects.toMatchObject({ code: "unavailable" });
  });

  it("counts follows: the last unfollow unsubscribes", () => {
    const { s, ws } = connected();
    s.follow("ticket:9");
    s.follow("ticket:9");
    s.unfollow("ticket:9");
    expect(ws.sent.filter((m) => m.type === "unsubscribe")).toEqual([]);
    s.unfollow("ticket:9");
    expect(ws.sent.filter((m) => m.type === "unsubscribe").map((m) => m.data)).toEqual([{ stream: "ticket:9" }]);
    expect(ws.sent.filter((m) => m.type === "resume")).toHaveLength(2);
  });

  it("does not reconnect after sign-out", () => {
    const { s, ws } = connected();
    s.stop();
    ws.drop(1000);
    vi.advanceTimersByTime(60000);
    expect(FakeWebSocket.all).toHaveLength(1);
  });
});
