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

const flush = async () => {
  for (let i = 0; i < 3; i++) await Promise.resolve();
};

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

  it("learns the account from the resume ack", async () => {
    const { s, ws } = connected();
    const got: number[] = [];
    s.on("account", (d) => got.push(d.account_id));
    ws.serve({ type: "ack", id: ws.sent[0].id, data: { account_id: 7 } });
    await flush();
    expect(s.accountId).toBe(7);
    expect(got).toEqual([7]);
  });

  it("resolves a follow at the stream's head and rejects a refused one", async () => {
    const { s, ws } = connected();
    let done = false;
    const p = s.follow("account:7").then(() => (done = true));
    const resume = ws.sent.at(-1);
    expect(resume.data).toEqual({ streams: [{ stream: "account:7" }] });
    ws.serve({ type: "ack", id: resume.id, data: { account_id: 7 } });
    await Promise.resolve();
    expect(done).toBe(false); // the ack comes before the server has read the head
    ws.serve({ type: "subscribed", stream: "account:7", seq: 41 });
    await p;
    expect(done).toBe(true);
    await expect(s.follow("account:7")).resolves.toBeUndefined(); // already followed

    const bad = s.follow("team:99");
    ws.serve({ type: "error", id: ws.sent.at(-1).id, data: { code: "forbidden", message: "no", field: "streams[0].stream" } });
    await expect(bad).rejects.toMatchObject({ code: "forbidden" });
    // Not resumed after a reconnect.
    ws.drop();
    vi.advanceTimersByTime(20000);
    const ws2 = FakeWebSocket.all.at(-1)!;
    ws2.open();
    expect(ws2.sent.at(-1).data.streams).toEqual([{ stream: "account:7", last_seq: 41 }]);
  });

  it("resolves a follow made offline when it lands on connect", async () => {
    const s = new Socket("/ws/agent");
    let done = false;
    const p = s.follow("team:3").then(() => (done = true));
    s.start();
    const ws = FakeWebSocket.all.at(-1)!;
    ws.open();
    expect(ws.sent.map((m) => m.data)).toEqual([{ streams: [] }, { streams: [{ stream: "team:3" }] }]);
    ws.serve({ type: "subscribed", stream: "team:3", seq: 5 });
    await p;
    expect(done).toBe(true);
  });

  it("drops a stream the server refuses on reconnect and resumes the others", async () => {
    const { s, ws } = connected();
    ws.serve({ type: "subscribed", stream: "agent:7", seq: 3 });
    s.follow("team:3");
    ws.serve({ type: "subscribed", stream: "team:3", seq: 8 });
    s.follow("ticket:9");
    ws.serve({ type: "subscribed", stream: "ticket:9", seq: 2 });
    ws.drop();
    vi.advanceTimersByTime(20000);
    const ws2 = FakeWebSocket.all.at(-1)!;
    ws2.open();
    const r = ws2.sent.at(-1);
    expect(r.data.streams.map((x: any) => x.stream)).toEqual(["agent:7", "team:3", "ticket:9"]);
    // Removed from the team meanwhile.
    ws2.serve({ type: "error", id: r.id, data: { code: "forbidden", message: "no", field: "streams[1].stream" } });
    await flush();
    expect(ws2.sent.at(-1).data).toEqual({ streams: [{ stream: "agent:7", last_seq: 3 }, { stream: "ticket:9", last_seq: 2 }] });
  });

  it("ignores frames of a stream it left", () => {
    const { s, ws } = connected();
    const got: number[] = [];
    s.on("ticket.created", (d) => got.push(d.id));
    s.follow("account:7");
    ws.serve({ type: "subscribed", stream: "account:7", seq: 1 });
    ws.serve({ type: "ticket.created", stream: "account:7", seq: 2, data: { id: 2 } });
    s.unfollow("account:7");
    ws.serve({ type: "ticket.created", stream: "account:7", seq: 3, data: { id: 3 } }); // in flight
    expect(got).toEqual([2]);
    expect(ws.sent.at(-1)).toMatchObject({ type: "unsubscribe", data: { stream: "account:7" } });
    ws.drop();
    vi.advanceTimersByTime(20000);
    const ws2 = FakeWebSocket.all.at(-1)!;
    ws2.open();
    expect(ws2.sent.map((m) => m.data)).toEqual([{ streams: [] }]);
  });

  it("does not reconnect after sign-out", () => {
    const { s, ws } = connected();
    s.stop();
    ws.drop(1000);
    vi.advanceTimersByTime(60000);
    expect(FakeWebSocket.all).toHaveLength(1);
  });
});
