// @vitest-environment happy-dom
// The open ticket follows its stream: a new message is added, a changed
// one (message.updated, an email's delivery) replaces the one shown.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as api from "./api";
import type { Message, Ticket } from "./api";
import type { Socket } from "./socket";

vi.mock("./api", async (importOriginal) => {
  const real = await importOriginal<typeof import("./api")>();
  return { ...real, ticket: vi.fn(), messages: vi.fn(), statuses: vi.fn(), cannedResponses: vi.fn(), teams: vi.fn() };
});

const { TicketView } = await import("./ticket");

const flush = async () => {
  for (let i = 0; i < 5; i++) await act(() => new Promise((r) => setTimeout(r, 0)));
};

function fakeSocket() {
  const handlers = new Map<string, ((d: any) => void)[]>();
  const socket = {
    state: "open",
    on(type: string, fn: (d: any) => void) {
      handlers.set(type, [...(handlers.get(type) ?? []), fn]);
      return () => handlers.set(type, (handlers.get(type) ?? []).filter((f) => f !== fn));
    },
    follow: vi.fn(),
    unfollow: vi.fn(),
    send: vi.fn(),
    request: vi.fn(),
  };
  const emit = (type: string, d: unknown) => act(() => (handlers.get(type) ?? []).forEach((f) => f(d)));
  return { socket: socket as unknown as Socket, emit };
}

let host: HTMLDivElement;
afterEach(() => {
  render(null, host);
  host.remove();
  vi.clearAllMocks();
});

describe("TicketView", () => {
  it("replaces a message on message.updated and adds one on message.created", async () => {
    HTMLElement.prototype.scrollIntoView ??= () => {};
    const t = { id: 42, subject: "Broken rake", channel: "email", customer_id: 5, status: "open", priority: "normal", tags: [], outcome: {}, times: {} } as unknown as Ticket;
    const reply: Message = { id: 7, ticket_id: 42, customer_id: 5, kind: "email", direction: "out", author_id: 1, body: "On its way", meta: { email: { delivery: { state: "queued" } } }, created_at: "2026-11-23T10:00:00Z" };
    vi.mocked(api.ticket).mockResolvedValue(t);
    vi.mocked(api.messages).mockResolvedValue({ items: [reply] });
    vi.mocked(api.statuses).mockResolvedValue({ base: ["new", "open", "pending", "on_hold", "solved", "closed"], items: [] });
    vi.mocked(api.cannedResponses).mockResolvedValue([]);
    vi.mocked(api.teams).mockResolvedValue({ items: [] });
    const { socket, emit } = fakeSocket();
    host = document.body.appendChild(document.createElement("div"));
    await act(() => render(<TicketView id={42} me={{ id: 1, email: "a@x", name: "Alex", role: "agent", team_ids: [] }} socket={socket}
      agents={new Map()} customerName={() => "Carla"} onChanged={() => {}} onTicket={() => {}} />, host));
    await flush();
    const delivery = () => host.querySelector(".delivery")?.textContent;
    expect(delivery()).toBe("Queued");

    await emit(api.EV.messageUpdated, { ...reply, meta: { email: { delivery: { state: "sent", answer: "250 OK" } } } });
    expect(delivery()).toBe("Sent");
    await emit(api.EV.messageUpdated, { ...reply, id: 99, ticket_id: 41, body: "another ticket's" });
    expect(host.querySelectorAll("[data-testid=message]").length).toBe(1);

    await emit(api.EV.message, { ...reply, id: 8, direction: "in", body: "Thanks!", attachments: [{ id: 3, filename: "photo.png", content_type: "image/png", size: 10, url: "/api/v1/attachments/3/content" }] });
    expect(host.querySelectorAll("[data-testid=message]").length).toBe(2);
    expect(host.querySelector("[data-testid=attachment] img.thumb")!.getAttribute("src")).toBe("/api/v1/attachments/3/content");
  });
});
