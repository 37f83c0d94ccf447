// @vitest-environment happy-dom
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Agent, Ticket } from "./api";
import { TICKET_CREATED, TicketList, insertTicket, listStream, matches } from "./lists";
import type { Socket } from "./socket";

const me: Agent = { id: 7, email: "a@x.test", name: "Ann", role: "agent", team_ids: [3] };
const tk = (id: number, at: string, extra: Partial<Ticket> = {}): Ticket => ({
  id, subject: `T${id}`, status: "new", priority: "normal", channel: "email", customer_id: 1, assignee_id: null, team_id: null,
  tags: [], outcome: {} as Ticket["outcome"], times: { created_at: at, updated_at: at, resolved_at: null, resolution_seconds: null }, ...extra,
});

/** Just enough of Socket for the list: handlers by event type. */
class FakeSocket {
  handlers = new Map<string, Set<(d: any) => void>>();
  on(type: string, h: (d: any) => void) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type)!.add(h);
    return () => this.handlers.get(type)!.delete(h);
  }
  emit(type: string, d: any) {
    this.handlers.get(type)?.forEach((h) => h(d));
  }
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await act(() => new Promise((r) => setTimeout(r, 0)));
};

afterEach(() => vi.unstubAllGlobals());

describe("insertTicket", () => {
  const a = tk(3, "2026-01-03T00:00:00Z"), b = tk(2, "2026-01-02T00:00:00Z"), c = tk(1, "2026-01-01T00:00:00Z");
  it("keeps newest first and ignores a ticket it has", () => {
    expect(insertTicket([a, c], b, false).map((t) => t.id)).toEqual([3, 2, 1]);
    expect(insertTicket([b, c], a, false).map((t) => t.id)).toEqual([3, 2, 1]);
    expect(insertTicket([a, b], c, false).map((t) => t.id)).toEqual([3, 2, 1]);
    const same = [a, b];
    expect(insertTicket(same, b, false)).toBe(same);
  });
  it("leaves an older ticket to Load more", () => {
    const l = [a, b];
    expect(insertTicket(l, c, true)).toBe(l);
  });
});

describe("matches", () => {
  it("applies the list's filter as the server does", () => {
    const mine = { assignee: "me" as const, status: ["new", "open"] };
    expect(matches(tk(1, "x", { assignee_id: 7 }), mine, me)).toBe(true);
    expect(matches(tk(1, "x", { assignee_id: 8 }), mine, me)).toBe(false);
    expect(matches(tk(1, "x", { assignee_id: 7, status: "solved" }), mine, me)).toBe(false);
    const queue = { team: 3, unassigned: true };
    expect(matches(tk(1, "x", { team_id: 3 }), queue, me)).toBe(true);
    expect(matches(tk(1, "x", { team_id: 3, assignee_id: 9 }), queue, me)).toBe(false);
    expect(matches(tk(1, "x", { team_id: 4 }), queue, me)).toBe(false);
    expect(matches(tk(1, "x", { channel: "chat" }), { channel: "email" }, me)).toBe(false);
    expect(matches(tk(1, "x", { tags: ["vip"] }), { tag: "vip" }, me)).toBe(true);
  });
});

describe("TicketList", () => {
  it("inserts a new ticket live and keeps the keyboard cursor on its ticket", async () => {
    vi.stubGlobal("fetch", async () => new Response(JSON.stringify({
      items: [tk(20, "2026-01-02T00:00:00Z", { assignee_id: 7 }), tk(10, "2026-01-01T00:00:00Z", { assignee_id: 7 })],
    }), { status: 200, headers: { "Content-Type": "application/json" } }));
    const socket = new FakeSocket();
    const opened: number[] = [];
    const seen: number[][] = [];
    const root = document.createElement("div");
    document.body.append(root);
    await act(() => {
      render(<TicketList list="mine" me={me} unread={{}} refresh={0} onOpen={(id) => opened.push(id)}
        onItems={(l) => seen.push(l.map((t) => t.id))} socket={socket as unknown as Socket} />, root);
    });
    await settle();
    const ids = () => [...root.querySelectorAll("li")].map((li) => li.id);
    expect(ids()).toEqual(["t-20", "t-10"]);
    const list = root.querySelector("ul")!;
    const key = async (k: string) => {
      await act(() => { list.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true })); });
    };
    await act(() => (root.querySelectorAll("li")[1] as HTMLElement).focus()); // on #10
    expect(list.getAttribute("aria-activedescendant")).toBe("t-10");

    // Someone else's ticket and a solved one are not "mine".
    await act(() => socket.emit(TICKET_CREATED, tk(30, "2026-01-03T00:00:00Z", { assignee_id: 8 })));
    await act(() => socket.emit(TICKET_CREATED, tk(31, "2026-01-03T00:00:00Z", { assignee_id: 7, status: "solved" })));
    expect(ids()).toEqual(["t-20", "t-10"]);
    // A new ticket of mine joins at the top; the cursor stays on #10.
    await act(() => socket.emit(TICKET_CREATED, tk(40, "2026-01-04T00:00:00Z", { assignee_id: 7 })));
    await act(() => socket.emit(TICKET_CREATED, tk(40, "2026-01-04T00:00:00Z", { assignee_id: 7 }))); // twice: shown once
    expect(ids()).toEqual(["t-40", "t-20", "t-10"]);
    expect(list.getAttribute("aria-activedescendant")).toBe("t-10");
    expect(seen.at(-1)).toEqual([40, 20, 10]);
    await key("ArrowUp");
    await key("Enter");
    expect(opened).toEqual([20]);
    await key("Home");
    await key("Enter");
    expect(opened).toEqual([20, 40]);
  });
});

/** A socket whose follows the test answers, as the server would with
 * "subscribed" (resolve) or an error frame (reject). */
class FollowSocket extends FakeSocket {
  accountId = 7;
  state = "open";
  log: string[] = [];
  answers = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  follow(stream: string) {
    this.log.push(`follow ${stream}`);
    return new Promise<void>((resolve, reject) => this.answers.set(stream, { resolve, reject }));
  }
  unfollow(stream: string) {
    this.log.push(`unfollow ${stream}`);
  }
}

describe("TicketList streams", () => {
  it("follows account:/team: only while All open / Team queue is shown, and loads once the follow is answered", async () => {
    let fetches: string[] = [];
    let items = [tk(10, "2026-01-01T00:00:00Z")];
    vi.stubGlobal("fetch", async (url: string) => {
      fetches.push(String(url));
      return new Response(JSON.stringify({ items }), { status: 200, headers: { "Content-Type": "application/json" } });
    });
    const socket = new FollowSocket();
    const root = document.createElement("div");
    document.body.append(root);
    const show = async (list: "mine" | "queue" | "open", who: Agent = me) => {
      await act(() => {
        render(<TicketList list={list} me={who} unread={{}} refresh={0} onOpen={() => {}} socket={socket as unknown as Socket} />, root);
      });
      await settle();
    };
    const ids = () => [...root.querySelectorAll("li")].map((li) => li.id);

    await show("mine");
    expect(socket.log).toEqual([]); // My tickets: the agent's own stream, followed by default
    expect(fetches).toHaveLength(1);

    // All open: follow the account's stream; the list waits for the answer
    // (the stream's head), then reloads, so a ticket created just before
    // the follow is in the REST answer.
    fetches = [];
    await show("open");
    expect(socket.log).toEqual(["follow account:7"]);
    expect(fetches).toEqual([]);
    items = [tk(11, "2026-01-02T00:00:00Z"), tk(10, "2026-01-01T00:00:00Z")];
    await act(() => socket.answers.get("account:7")!.resolve());
    await settle();
    expect(fetches).toHaveLength(1);
    expect(ids()).toEqual(["t-11", "t-10"]);
    await act(() => socket.emit(TICKET_CREATED, tk(12, "2026-01-03T00:00:00Z")));
    expect(ids()).toEqual(["t-12", "t-11", "t-10"]);

    // Team queue: the team's stream instead.
    fetches = [];
    await show("queue");
    expect(socket.log).toEqual(["follow account:7", "unfollow account:7", "follow team:3"]);
    expect(fetches).toEqual([]);
    await act(() => socket.answers.get("team:3")!.resolve());
    await settle();
    expect(fetches).toHaveLength(1);
    expect(fetches[0]).toContain("team=3");

    // Back to My tickets: nothing followed any more.
    fetches = [];
    await show("mine");
    expect(socket.log.slice(3)).toEqual(["unfollow team:3"]);
    expect(fetches).toHaveLength(1);

    // A refused follow still shows the list (without live updates).
    socket.log = [];
    fetches = [];
    await show("open");
    await act(() => socket.answers.get("account:7")!.reject(new Error("forbidden")));
    await settle();
    expect(fetches).toHaveLength(1);

    // Supervisors hear new tickets on the supervisor stream: no follow.
    socket.log = [];
    await show("mine");
    await show("open", { ...me, role: "supervisor" });
    expect(socket.log).toEqual(["unfollow account:7"]);
    render(null, root);
  });

  it("keeps a ticket announced while the reload after the follow runs", async () => {
    let answer!: () => void;
    vi.stubGlobal("fetch", () => new Promise<Response>((resolve) => {
      answer = () => resolve(new Response(JSON.stringify({ items: [tk(10, "2026-01-01T00:00:00Z")] }),
        { status: 200, headers: { "Content-Type": "application/json" } }));
    }));
    const socket = new FollowSocket();
    const root = document.createElement("div");
    document.body.append(root);
    await act(() => {
      render(<TicketList list="open" me={me} unread={{}} refresh={0} onOpen={() => {}} socket={socket as unknown as Socket} />, root);
    });
    await act(() => socket.answers.get("account:7")!.resolve());
    await settle();
    // Committed after the list's query read the database, announced before its answer.
    await act(() => socket.emit(TICKET_CREATED, tk(11, "2026-01-02T00:00:00Z")));
    await act(() => answer());
    await settle();
    expect([...root.querySelectorAll("li")].map((li) => li.id)).toEqual(["t-11", "t-10"]);
    render(null, root);
  });

  it("names the list streams", () => {
    expect(listStream("open", me, 7)).toBe("account:7");
    expect(listStream("queue", me, 7)).toBe("team:3");
    expect(listStream("queue", { ...me, team_ids: [] }, 7)).toBe("account:7");
    expect(listStream("mine", me, 7)).toBeUndefined();
    expect(listStream("open", me, undefined)).toBeUndefined();
    expect(listStream("open", { ...me, role: "admin" }, 7)).toBeUndefined();
  });
});
