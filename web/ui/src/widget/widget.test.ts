// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

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
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.();
    });
  }
  send(s: string) {
    this.sent.push(JSON.parse(s));
  }
  close() {}
  serve(frame: object) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));
async function settle() {
  for (let i = 0; i < 5; i++) await tick();
}

let calls: { url: string; body: any; auth?: string }[];
function stubServer(session: object) {
  calls = [];
  vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
    const body = typeof init.body === "string" ? JSON.parse(init.body) : init.body;
    calls.push({ url, body, auth: (init.headers as Record<string, string>).Authorization });
    const path = new URL(url).pathname;
    const answer = path.endsWith("/session") ? session
      : path.endsWith("/chat") ? { ticket_id: 9, message_id: 100, position: 2, estimated_wait_seconds: 120 }
      : {};
    return new Response(JSON.stringify(answer), { status: 200 });
  });
}

async function boot() {
  // A type browsers do not run: the test imports the module itself.
  document.body.innerHTML = `<h1>Shop</h1><script type="text/x-not-run" data-widget="w1" src="https://desk.test/widget.js"></script>`;
  delete (window as any).__agentdeskWidget;
  vi.resetModules();
  await import("./widget");
  await settle();
  return (document.querySelector("[data-agentdesk-widget]") as HTMLElement).shadowRoot!;
}

function fill(root: ShadowRoot, name: string, value: string) {
  (root.querySelector(`[name=${name}]`) as HTMLInputElement).value = value;
}

beforeEach(() => {
  FakeWebSocket.all = [];
  vi.stubGlobal("WebSocket", FakeWebSocket);
  localStorage.clear();
});
afterEach(() => vi.unstubAllGlobals());

describe("widget.js", () => {
  it("runs a chat: pre-chat, queue, agent, messages both ways, rating", async () => {
    stubServer({ visitor_id: "v_1", token: "wt1.t", online: true, queues: [{ id: 1, name: "Sales" }, { id: 2, name: "Support" }] });
    const root = await boot();
    expect(calls[0].url).toBe("https://desk.test/api/v1/widget/w1/session");
    expect(localStorage.getItem("agentdesk_visitor")).toBe("v_1");
    const ws = FakeWebSocket.all[0];
    expect(ws.url).toBe("wss://desk.test/ws/customer?token=wt1.t");
    expect(ws.sent[0]).toMatchObject({ type: "resume", data: { streams: [] } });

    (root.querySelector(".launcher") as HTMLButtonElement).click();
    expect(root.querySelector(".panel")!.hasAttribute("hidden")).toBe(false);
    fill(root, "name", "Carla");
    fill(root, "email", "carla@example.org");
    (root.querySelector("[name=topic]") as HTMLSelectElement).value = "2";
    fill(root, "message", "Where is my order?");
    (root.querySelector("form") as HTMLFormElement).dispatchEvent(new Event("submit", { cancelable: true }));
    await settle();
    expect(calls[1]).toMatchObject({
      url: "https://desk.test/api/v1/widget/w1/chat", auth: "Bearer wt1.t",
      body: { name: "Carla", email: "carla@example.org", queue_id: 2, body: "Where is my order?" },
    });
    expect(root.querySelector("[data-testid=queue-status]")!.textContent).toContain("number 2");
    expect(root.querySelector("[data-testid=queue-status]")!.textContent).toContain("about 2 minutes");

    ws.serve({ type: "subscribed", stream: "visitor:v_1", seq: 0 });
    ws.serve({ type: "chat.agent_joined", stream: "visitor:v_1", seq: 1, data: { ticket_id: 9, agent_name: "Alex Agent" } });
    ws.serve({ type: "message.created", stream: "visitor:v_1", seq: 2, data: { id: 101, ticket_id: 9, direction: "out", body: "Hi Carla!" } });
    ws.serve({ type: "message.created", stream: "visitor:v_1", seq: 2, data: { id: 101, ticket_id: 9, direction: "out", body: "Hi Carla!" } });
    expect(root.querySelector("[data-testid=agent-name]")!.textContent).toContain("Alex Agent");
    expect(root.querySelectorAll("[data-testid=msg-agent]")).toHaveLength(1);

    (root.querySelector(".composer textarea") as HTMLTextAreaElement).value = "Order 1001";
    (root.querySelector(".composer") as HTMLFormElement).dispatchEvent(new Event("submit", { cancelable: true }));
    const send = ws.sent.find((m) => m.type === "chat.send");
    expect(send.data).toMatchObject({ ticket_id: 9, body: "Order 1001" });
    // The server's echo of the visitor's own message is not shown twice.
    ws.serve({ type: "ack", id: send.id, data: { message_id: 102, ticket_id: 9 } });
    ws.serve({ type: "message.created", stream: "visitor:v_1", seq: 3, data: { id: 102, ticket_id: 9, direction: "in", body: "Order 1001" } });
    expect([...root.querySelectorAll("[data-testid=msg-me]")].map((e) => e.textContent)).toEqual(["Where is my order?", "Order 1001"]);

    ws.serve({ type: "typing", stream: "visitor:v_1", data: { ticket_id: 9, from: "agent", typing: true } });
    expect(root.querySelector(".typing")!.textContent).toContain("Alex Agent is typing");

    ws.serve({ type: "chat.ended", stream: "visitor:v_1", seq: 4, data: { ticket_id: 9 } });
    (root.querySelector("[data-rating='5']") as HTMLButtonElement).click();
    fill(root, "comment", "Quick!");
    (root.querySelector("form") as HTMLFormElement).dispatchEvent(new Event("submit", { cancelable: true }));
    await settle();
    expect(calls.at(-1)).toMatchObject({ url: "https://desk.test/api/v1/widget/w1/chat/rating", body: { rating: 5, comment: "Quick!" } });
    expect(root.querySelector("[data-testid=thanks]")).not.toBeNull();
  });

  it("asks for a rating before sending feedback", async () => {
    stubServer({ visitor_id: "v_1", token: "t", online: true, queues: [] });
    const root = await boot();
    FakeWebSocket.all[0].serve({ type: "chat.ended", stream: "visitor:v_1", seq: 1, data: {} });
    (root.querySelector("form") as HTMLFormElement).dispatchEvent(new Event("submit", { cancelable: true }));
    expect(root.querySelector(".error")!.textContent).toContain("1 to 5");
  });

  it("recognises a returning visitor", async () => {
    localStorage.setItem("agentdesk_visitor", "v_old");
    stubServer({ visitor_id: "v_old", token: "t", online: true, queues: [], name: "Carla", email: "carla@example.org" });
    const root = await boot();
    expect(calls[0].body).toEqual({ visitor_id: "v_old" });
    expect(root.textContent).toContain("Welcome back, Carla");
    expect((root.querySelector("[name=email]") as HTMLInputElement).value).toBe("carla@example.org");
  });

  it("rebuilds the chat from chat.state after a resync", async () => {
    stubServer({ visitor_id: "v_1", token: "t", online: true, queues: [],
      chat: { ticket_id: 9, status: "queued", position: 3, messages: [{ id: 1, ticket_id: 9, direction: "in", body: "Hi" }] } });
    const root = await boot();
    const ws = FakeWebSocket.all[0];
    ws.serve({ type: "resync", stream: "visitor:v_1", seq: 40 });
    ws.serve({ type: "chat.state", stream: "visitor:v_1", data: { ticket_id: 9, status: "active", agent_name: "Alex Agent",
      messages: [{ id: 1, ticket_id: 9, direction: "in", body: "Hi" }, { id: 5, ticket_id: 9, direction: "out", body: "Back again" }] } });
    expect(root.querySelector("[data-testid=agent-name]")!.textContent).toContain("Alex Agent");
    // An event after the resync that the snapshot already holds is shown once.
    ws.serve({ type: "message.created", stream: "visitor:v_1", seq: 41, data: { id: 5, ticket_id: 9, direction: "out", body: "Back again" } });
    const agentMsgs = root.querySelectorAll("[data-testid=msg-agent]");
    expect(agentMsgs).toHaveLength(1);
    expect(agentMsgs[0].textContent).toContain("Back again");
    expect([...root.querySelectorAll("[data-testid=msg-me]")].map((e) => e.textContent)).toEqual(["Hi"]);
    // No chat to show any more: the pre-chat form.
    ws.serve({ type: "resync", stream: "visitor:v_1", seq: 50 });
    ws.serve({ type: "chat.state", stream: "visitor:v_1", data: null });
    expect(root.querySelector("[name=email]")).not.toBeNull();
    expect(root.querySelectorAll("[data-testid=msg-agent]")).toHaveLength(0);
  });

  it("sends a file with progress, shows errors, and shows files as thumbnails and downloads", async () => {
    stubServer({ visitor_id: "v_1", token: "wt1.t", online: true, queues: [],
      chat: { ticket_id: 9, status: "active", agent_name: "Alex Agent", messages: [] } });
    // Files are fetched with the token and shown from object URLs.
    const fetched: { url: string; auth?: string }[] = [];
    const apiFetch = (globalThis as any).fetch;
    vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
      if (!url.includes("/attachments/")) return apiFetch(url, init);
      fetched.push({ url, auth: (init.headers as Record<string, string>).Authorization });
      return new Response(new Blob(["png"]), { status: 200 });
    });
    const objectURL = vi.spyOn(URL, "createObjectURL").mockReturnValue("blob:file");
    const xhrs: FakeXHR[] = [];
    class FakeXHR {
      method = ""; url = ""; headers: Record<string, string> = {}; body: any; status = 0; responseText = "";
      upload: { onprogress?: (e: any) => void } = {};
      onload?: () => void; onerror?: () => void;
      constructor() { xhrs.push(this); }
      open(m: string, u: string) { this.method = m; this.url = u; }
      setRequestHeader(k: string, v: string) { this.headers[k] = v; }
      send(b: any) { this.body = b; }
      answer(status: number, body: object) { this.status = status; this.responseText = JSON.stringify(body); this.onload?.(); }
    }
    vi.stubGlobal("XMLHttpRequest", FakeXHR);
    const root = await boot();
    (root.querySelector(".launcher") as HTMLButtonElement).click();
    const ws = FakeWebSocket.all[0];
    await settle();

    const pick = (name: string) => {
      const input = root.querySelector("[data-testid=attach]") as HTMLInputElement;
      Object.defineProperty(input, "files", { value: [new File(["abc"], name, { type: "image/png" })] });
      input.dispatchEvent(new Event("change"));
    };
    pick("photo.png");
    expect(xhrs[0]).toMatchObject({ method: "POST", url: "https://desk.test/api/v1/widget/w1/attachments", headers: { Authorization: "Bearer wt1.t" } });
    expect((xhrs[0].body as FormData).get("file")).toBeInstanceOf(File);
    xhrs[0].upload.onprogress!({ lengthComputable: true, loaded: 42, total: 100 });
    expect(root.querySelector("[data-testid=upload-status]")!.textContent).toBe("Uploading photo.png… 42%");
    xhrs[0].answer(201, { id: 7, filename: "photo.png", content_type: "image/png", size: 3, url: "/api/v1/widget/w1/attachments/7/content" });
    await settle();
    expect(root.querySelector("[data-testid=upload-status]")).toBeNull();
    const send = ws.sent.find((m) => m.type === "chat.send");
    expect(send.data).toMatchObject({ ticket_id: 9, body: "", attachment_ids: [7] });
    const mine = root.querySelector("[data-testid=msg-me]")!;
    expect(mine.querySelector("[data-testid=file]")!.textContent).toContain("photo.png");
    expect((mine.querySelector("img.thumb") as HTMLImageElement).src).toBe("blob:file");
    expect(fetched[0]).toEqual({ url: "https://desk.test/api/v1/widget/w1/attachments/7/content", auth: "Bearer wt1.t" });

    // A refused upload says why, in the widget.
    pick("huge.mov");
    xhrs[1].answer(413, { error: { kind: "too_large", field: "file", message: "the file is larger than 10 MB" } });
    await settle();
    expect(root.querySelector(".error")!.textContent).toBe("huge.mov: the file is larger than 10 MB");
    expect(ws.sent.filter((m) => m.type === "chat.send")).toHaveLength(1);

    // The agent's file: a download link, fetched with the token on click.
    ws.serve({ type: "message.created", stream: "visitor:v_1", seq: 5, data: { id: 20, ticket_id: 9, direction: "out", body: "Your label",
      attachments: [{ id: 8, filename: "label.pdf", content_type: "application/pdf", size: 2048, url: "/api/v1/attachments/8/content" }] } });
    const link = root.querySelector("[data-testid=msg-agent] [data-testid=file]") as HTMLAnchorElement;
    expect(link.textContent).toBe("⤓ label.pdf (2 KB)");
    expect(link.querySelector("img")).toBeNull();
    link.click();
    await settle();
    expect(fetched.at(-1)).toEqual({ url: "https://desk.test/api/v1/widget/w1/attachments/8/content", auth: "Bearer wt1.t" });
    objectURL.mockRestore();
  });

  it("offers to leave a message when offline", async () => {
    stubServer({ visitor_id: "v_2", token: "t", online: false });
    const root = await boot();
    expect(FakeWebSocket.all).toHaveLength(0);
    expect(root.textContent).toContain("Leave a message");
    fill(root, "name", "Carla");
    fill(root, "email", "carla@example.org");
    fill(root, "message", "Call me back");
    (root.querySelector("form") as HTMLFormElement).dispatchEvent(new Event("submit", { cancelable: true }));
    await settle();
    expect(calls.at(-1)).toMatchObject({ url: "https://desk.test/api/v1/widget/w1/messages", body: { name: "Carla", body: "Call me back" } });
    expect(root.textContent).toContain("We will answer by email");
  });
});
