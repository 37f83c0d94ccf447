// @vitest-environment happy-dom
// The status picker on a ticket: custom statuses under their base status,
// a PATCH of custom_status or status, and solved or closed custom statuses
// through the wrap-up dialog, which sets them with the outcome.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import * as api from "./api";
import type { Ticket } from "./api";

vi.mock("./api", async (importOriginal) => {
  const real = await importOriginal<typeof import("./api")>();
  return { ...real, statuses: vi.fn(), updateTicket: vi.fn(), reasons: vi.fn(), wrapUp: vi.fn() };
});

const { Fields } = await import("./ticket");
const { WrapUpDialog } = await import("./wrapup");

const TICKET = { id: 42, subject: "Broken rake", channel: "email", customer_id: 5, status: "open", priority: "normal", tags: [], outcome: { contact_reason_id: null, cancellation_reason_id: null } } as unknown as Ticket;
const CUSTOM = [
  { id: 1, name: "escalated", maps_to: "open" as const },
  { id: 2, name: "waiting for parts", maps_to: "pending" as const },
  { id: 3, name: "refunded", maps_to: "solved" as const },
];

const flush = async () => {
  for (let i = 0; i < 5; i++) await act(() => new Promise((r) => setTimeout(r, 0)));
};

let host: HTMLDivElement;
beforeEach(() => {
  vi.mocked(api.statuses).mockResolvedValue({ base: ["new", "open", "pending", "on_hold", "solved", "closed"], items: CUSTOM });
  vi.mocked(api.updateTicket).mockImplementation(async (id, patch) => ({ ...TICKET, id, ...patch }) as Ticket);
  host = document.body.appendChild(document.createElement("div"));
});
afterEach(() => {
  render(null, host);
  host.remove();
  vi.clearAllMocks();
});

async function choose(value: string) {
  const select = host.querySelector("[data-testid=status]") as HTMLSelectElement;
  select.value = value;
  await act(() => { select.dispatchEvent(new Event("change", { bubbles: true })); });
  await flush();
}

describe("status picker", () => {
  it("groups custom statuses under their base status and PATCHes what is chosen", async () => {
    const onChange = vi.fn();
    const onWrapUp = vi.fn();
    await act(() => render(<Fields ticket={TICKET} onChange={onChange} onWrapUp={onWrapUp} />, host));
    await flush();
    const groups = [...host.querySelectorAll("[data-testid=status] optgroup")].map((g) =>
      `${g.getAttribute("label")}: ${[...g.querySelectorAll("option")].map((o) => o.textContent).join(", ")}`);
    expect(groups).toEqual(["Open: Open, Escalated", "Pending: Pending, Waiting for parts", "Solved: Refunded (wrap up)"]);
    const loose = [...host.querySelectorAll("[data-testid=status] > option")].map((o) => o.getAttribute("value"));
    expect(loose).toEqual(["new", "on_hold"]);

    await choose("custom:waiting for parts");
    expect(api.updateTicket).toHaveBeenLastCalledWith(42, { custom_status: "waiting for parts" });
    expect(onChange).toHaveBeenCalledTimes(1);

    await choose("new");
    expect(api.updateTicket).toHaveBeenLastCalledWith(42, { status: "new" });

    await choose("custom:refunded");
    expect(onWrapUp).toHaveBeenCalledWith(CUSTOM[2]);
    expect(api.updateTicket).toHaveBeenCalledTimes(2);
  });

  it("shows a ticket's custom status as chosen", async () => {
    await act(() => render(<Fields ticket={{ ...TICKET, status: "pending", custom_status: "waiting for parts" }} onChange={() => {}} onWrapUp={() => {}} />, host));
    await flush();
    expect((host.querySelector("[data-testid=status]") as HTMLSelectElement).value).toBe("custom:waiting for parts");
  });
});

describe("wrap-up with a custom status", () => {
  it("sets the custom status with the outcome, under the wrap-up's rules", async () => {
    HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) { this.open = true; };
    vi.mocked(api.reasons).mockImplementation(async (kind) => ({ items: kind === "contact" ? [{ id: 7, kind: "contact", parent_id: null, name: "Refund request", archived_at: null }] : [] }));
    vi.mocked(api.wrapUp).mockImplementation(async (id, w) => ({ ...TICKET, id, status: w.status, custom_status: w.custom_status }) as Ticket);
    const onDone = vi.fn();
    await act(() => render(<WrapUpDialog ticket={TICKET} customStatus={CUSTOM[2]} onDone={onDone} onCancel={() => {}} />, host));
    await flush();
    expect(host.querySelector("[data-testid=wrap-custom-status]")!.textContent).toBe("Set ticket to Refunded (Solved)");
    expect(host.querySelector("input[name=wrap-status]")).toBeNull();
    // Without a contact reason, nothing is sent.
    await act(() => { host.querySelector("form")!.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })); });
    expect(api.wrapUp).not.toHaveBeenCalled();
    const reason = host.querySelector("#wrap-contact") as HTMLSelectElement;
    reason.value = "7";
    await act(() => { reason.dispatchEvent(new Event("change", { bubbles: true })); });
    await act(() => { host.querySelector("form")!.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })); });
    await flush();
    expect(api.wrapUp).toHaveBeenCalledWith(42, { status: "solved", custom_status: "refunded", contact_reason_id: 7, resolution_code: "solved", cancellation_reason_id: null });
    expect(onDone).toHaveBeenCalled();
  });
});
