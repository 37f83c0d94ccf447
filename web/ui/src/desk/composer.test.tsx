// @vitest-environment happy-dom
// The composer with the server stubbed at api.ts: canned responses by "/"
// and by the picker, and files picked, pasted, dropped, uploaded with
// progress, removed, refused, and sent as attachment_ids.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import * as api from "./api";
import type { Canned, Ticket } from "./api";
import type { Socket } from "./socket";

vi.mock("./api", async (importOriginal) => {
  const real = await importOriginal<typeof import("./api")>();
  return {
    ...real,
    cannedResponses: vi.fn(),
    renderCanned: vi.fn(),
    teams: vi.fn(),
    sendMessage: vi.fn(),
    uploadAttachment: vi.fn(),
  };
});

const { Composer } = await import("./ticket");

const CANNED: Canned[] = [
  { id: 1, title: "Refund issued", shortcut: "refund", body: "Hi {{customer.first_name}}, refunded.", scope: "team", team_id: 3, agent_id: null },
  { id: 2, title: "Greeting", shortcut: "hi", body: "Hello {{customer.first_name}}", scope: "account", team_id: null, agent_id: null },
  { id: 3, title: "Reply later", shortcut: "later", body: "Back soon", scope: "personal", team_id: null, agent_id: 7 },
];

const TICKET = { id: 42, subject: "Broken rake", channel: "email", customer_id: 5, status: "open", priority: "normal", tags: [] } as unknown as Ticket;
const ME = { id: 7, email: "a@x", name: "Alex", role: "agent" as const, team_ids: [3] };
const socket = { state: "closed", send: vi.fn(), request: vi.fn() } as unknown as Socket;

const flush = async () => {
  for (let i = 0; i < 5; i++) await act(() => new Promise((r) => setTimeout(r, 0)));
};

let host: HTMLDivElement;
let sent: any[];
beforeEach(async () => {
  sent = [];
  vi.mocked(api.cannedResponses).mockResolvedValue(CANNED);
  vi.mocked(api.teams).mockResolvedValue({ items: [{ id: 3, name: "Support" }] });
  vi.mocked(api.renderCanned).mockImplementation(async (id) => (id === 1 ? "Hi Carla, refunded." : id === 2 ? "Hello Carla" : "Back soon"));
  vi.mocked(api.sendMessage).mockImplementation(async (ticketId, m) => {
    sent.push(m);
    return { id: 900 + sent.length, ticket_id: ticketId, customer_id: 5, kind: m.kind, direction: m.direction, author_id: 7, body: m.body, created_at: "2026-11-23T10:00:00Z" };
  });
  host = document.body.appendChild(document.createElement("div"));
  await act(() => render(<Composer ticket={TICKET} me={ME} socket={socket} onSent={() => {}} />, host));
  await flush();
});
afterEach(() => {
  render(null, host);
  host.remove();
  vi.clearAllMocks();
});

const area = () => host.querySelector("textarea") as HTMLTextAreaElement;
async function type(text: string) {
  const ta = area();
  ta.focus();
  ta.value = text;
  ta.setSelectionRange(text.length, text.length);
  await act(() => { ta.dispatchEvent(new Event("input", { bubbles: true })); });
}
async function key(el: Element, k: string, init: KeyboardEventInit = {}) {
  await act(() => { el.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true, ...init })); });
}
async function submit() {
  await act(() => { (host.querySelector("form") as HTMLFormElement).dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })); });
  await flush();
}

describe("canned responses in the composer", () => {
  it("/ + shortcut inserts the response rendered for the ticket, replacing what was typed", async () => {
    await type("Thanks! /ref");
    const options = () => [...host.querySelectorAll("[data-testid=canned-slash] [role=option] .canned-title")].map((e) => e.textContent);
    expect(options()).toEqual(["Refund issued"]);
    expect(area().getAttribute("aria-activedescendant")).toBe("canned-slash-options-1");
    await key(area(), "Enter");
    await flush();
    expect(api.renderCanned).toHaveBeenCalledWith(1, 42);
    expect(area().value).toBe("Thanks! Hi Carla, refunded.");
    expect(host.querySelector("[data-testid=canned-slash]")).toBeNull();
    // Enter picked, it did not send.
    expect(api.sendMessage).not.toHaveBeenCalled();
  });

  it("moves through the / menu with the arrows; Escape closes it and keeps the text", async () => {
    await type("/");
    expect(host.querySelectorAll("[data-testid=canned-slash] [role=option]").length).toBe(3);
    await key(area(), "ArrowDown");
    expect(host.querySelector("[data-testid=canned-slash] [aria-selected=true] .canned-title")!.textContent).toBe("Greeting");
    await key(area(), "Escape");
    expect(host.querySelector("[data-testid=canned-slash]")).toBeNull();
    expect(area().value).toBe("/");
    await type("/hi");
    await key(area(), "Tab");
    await flush();
    expect(area().value).toBe("Hello Carla");
  });

  it("the Canned picker inserts at the caret", async () => {
    await type("Dear customer, ");
    await act(() => (host.querySelector("[data-testid=canned-button]") as HTMLButtonElement).click());
    const search = host.querySelector(".canned-picker input[type=search]") as HTMLInputElement;
    expect(search).not.toBeNull();
    search.value = "later";
    await act(() => { search.dispatchEvent(new Event("input", { bubbles: true })); });
    await key(search, "Enter");
    await flush();
    expect(api.renderCanned).toHaveBeenCalledWith(3, 42);
    expect(area().value).toBe("Dear customer, Back soon");
    expect(host.querySelector(".canned-picker")).toBeNull();
    // Alt+C opens it from the keyboard.
    await key(area(), "c", { altKey: true });
    expect(host.querySelector(".canned-picker")).not.toBeNull();
  });

  it("shows why a response could not be rendered", async () => {
    vi.mocked(api.renderCanned).mockRejectedValueOnce(new api.ApiError(404, "not_found", "ticket not found"));
    await type("/hi");
    await key(area(), "Enter");
    await flush();
    expect(host.querySelector("[role=alert]")!.textContent).toBe("Greeting: ticket not found");
    expect(area().value).toBe("/hi");
  });
});

describe("attachments in the composer", () => {
  /** Uploads the test finishes by hand: progress, answer or refusal. */
  function controlledUploads() {
    const pending: { file: File; progress: (p: number) => void; resolve: (a: api.Attachment) => void; reject: (e: unknown) => void; signal?: AbortSignal }[] = [];
    vi.mocked(api.uploadAttachment).mockImplementation((file, opts = {}) =>
      new Promise((resolve, reject) => {
        pending.push({ file, progress: opts.onProgress ?? (() => {}), resolve, reject, signal: opts.signal });
        opts.signal?.addEventListener("abort", () => reject(new DOMException("cancelled", "AbortError")));
      }));
    return pending;
  }
  const file = (name: string, type = "application/pdf", size = 2048) => new File([new Uint8Array(size)], name, { type });

  it("uploads picked files with progress and sends their ids with a note", async () => {
    const pending = controlledUploads();
    const input = host.querySelector("[data-testid=attach-input]") as HTMLInputElement;
    Object.defineProperty(input, "files", { value: [file("invoice.pdf"), file("photo.png", "image/png")], configurable: true });
    await act(() => { input.dispatchEvent(new Event("change", { bubbles: true })); });
    expect(pending.map((p) => p.file.name)).toEqual(["invoice.pdf", "photo.png"]);
    const rows = () => [...host.querySelectorAll("[data-testid=upload]")];
    expect(rows().length).toBe(2);
    await act(() => pending[0].progress(0.5));
    expect((rows()[0].querySelector("progress") as HTMLProgressElement).value).toBe(0.5);
    const sendButton = host.querySelector("button[type=submit]") as HTMLButtonElement;
    expect(sendButton.disabled).toBe(true);
    expect(sendButton.textContent).toBe("Uploading…");

    await act(() => (host.querySelectorAll("[role=tab]")[1] as HTMLButtonElement).click());
    await act(async () => {
      pending[0].resolve({ id: 11, filename: "invoice.pdf", content_type: "application/pdf", size: 2048, url: "/api/v1/attachments/11/content" });
      pending[1].resolve({ id: 12, filename: "photo.png", content_type: "image/png", size: 2048, url: "/api/v1/attachments/12/content" });
    });
    await flush();
    expect(rows().map((r) => r.className)).toEqual(["upload-done", "upload-done"]);
    expect(sendButton.disabled).toBe(false);
    await type("See the files");
    await submit();
    expect(sent).toEqual([{ kind: "note", direction: "internal", body: "See the files", subject: undefined, attachment_ids: [11, 12] }]);
    expect(rows().length).toBe(0);
  });

  it("shows the server's message for a refused file, and a removed file is not sent", async () => {
    const pending = controlledUploads();
    const input = host.querySelector("[data-testid=attach-input]") as HTMLInputElement;
    Object.defineProperty(input, "files", { value: [file("huge.iso"), file("ok.txt", "text/plain"), file("slow.zip")], configurable: true });
    await act(() => { input.dispatchEvent(new Event("change", { bubbles: true })); });
    await act(async () => {
      pending[0].reject(new api.ApiError(413, "too_large", "the file is larger than 25 MB", "file"));
      pending[1].resolve({ id: 21, filename: "ok.txt", content_type: "text/plain", size: 2048, url: "/api/v1/attachments/21/content" });
    });
    await flush();
    expect(host.querySelector("[data-testid=upload-error]")!.textContent).toBe("huge.iso: the file is larger than 25 MB");
    // Removing the one still uploading cancels it.
    await act(() => (host.querySelector('[aria-label="Remove slow.zip"]') as HTMLButtonElement).click());
    expect(pending[2].signal!.aborted).toBe(true);
    await act(() => (host.querySelector('[aria-label="Remove huge.iso"]') as HTMLButtonElement).click());
    expect(host.querySelector("[data-testid=upload-error]")).toBeNull();
    // A file alone is a message.
    await submit();
    expect(sent).toEqual([{ kind: "email", direction: "out", body: "", subject: "Re: Broken rake", attachment_ids: [21] }]);
  });

  it("takes pasted and dropped files", async () => {
    const pending = controlledUploads();
    const paste = new Event("paste", { bubbles: true, cancelable: true });
    Object.defineProperty(paste, "clipboardData", { value: { files: [file("screenshot.png", "image/png")], items: [] } });
    await act(() => { area().dispatchEvent(paste); });
    expect(paste.defaultPrevented).toBe(true);
    const drop = new Event("drop", { bubbles: true, cancelable: true });
    Object.defineProperty(drop, "dataTransfer", { value: { files: [file("log.txt", "text/plain")], items: [], types: ["Files"] } });
    await act(() => { host.querySelector("form")!.dispatchEvent(drop); });
    expect(pending.map((p) => p.file.name)).toEqual(["screenshot.png", "log.txt"]);
    // Pasting text is typing, not a file.
    const text = new Event("paste", { bubbles: true, cancelable: true });
    Object.defineProperty(text, "clipboardData", { value: { files: [], items: [{ kind: "string" }] } });
    await act(() => { area().dispatchEvent(text); });
    expect(text.defaultPrevented).toBe(false);
  });
});
