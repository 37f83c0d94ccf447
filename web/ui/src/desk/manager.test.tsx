// @vitest-environment happy-dom
// The canned-response management dialog: agents change their own, see the
// shared ones; supervisors choose who shares a new one; the server's field
// errors land under their field.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import * as api from "./api";
import type { Agent, Canned } from "./api";

vi.mock("./api", async (importOriginal) => {
  const real = await importOriginal<typeof import("./api")>();
  return { ...real, teams: vi.fn(), createCanned: vi.fn(), updateCanned: vi.fn(), deleteCanned: vi.fn() };
});

const { CannedManager } = await import("./canned");

const LIST: Canned[] = [
  { id: 1, title: "Greeting", shortcut: "hi", body: "Hello", scope: "account", team_id: null, agent_id: null },
  { id: 2, title: "Refund issued", shortcut: "refund", body: "Refunded", scope: "team", team_id: 3, agent_id: null },
  { id: 3, title: "My sign-off", shortcut: "sig", body: "Regards", scope: "personal", team_id: null, agent_id: 7 },
];
const AGENT: Agent = { id: 7, email: "a@x", name: "Alex", role: "agent", team_ids: [3] };
const SUPERVISOR: Agent = { id: 8, email: "s@x", name: "Sam", role: "supervisor", team_ids: [3] };

const flush = async () => {
  for (let i = 0; i < 5; i++) await act(() => new Promise((r) => setTimeout(r, 0)));
};
async function fill(sel: string, value: string) {
  const el = host.querySelector(sel) as HTMLInputElement;
  el.value = value;
  await act(() => { el.dispatchEvent(new Event(el.tagName === "SELECT" ? "change" : "input", { bubbles: true })); });
}
const button = (text: string) => [...host.querySelectorAll("dialog button")].find((b) => b.textContent === text) as HTMLButtonElement;

let host: HTMLDivElement;
beforeEach(() => {
  HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) { this.open = true; };
  vi.mocked(api.teams).mockResolvedValue({ items: [{ id: 3, name: "Support" }] });
  host = document.body.appendChild(document.createElement("div"));
});
afterEach(() => {
  render(null, host);
  host.remove();
  vi.clearAllMocks();
});

describe("CannedManager", () => {
  it("lets an agent change only their own responses", async () => {
    await act(() => render(<CannedManager me={AGENT} list={LIST} onChanged={() => {}} onClose={() => {}} />, host));
    await flush();
    const rows = [...host.querySelectorAll("[data-testid=canned-row]")].map((r) => [r.querySelector(".canned-title")!.textContent, r.querySelectorAll("button").length]);
    expect(rows).toEqual([["My sign-off", 2], ["Greeting", 0], ["Refund issued", 0]]);
    expect(host.textContent).toContain("Team Support");
    // A new one is personal: no scope to choose.
    await act(() => button("New canned response").click());
    expect(host.querySelector("#canned-scope")).toBeNull();
  });

  it("creates a team response for a supervisor and shows the server's field error", async () => {
    const onChanged = vi.fn();
    vi.mocked(api.createCanned).mockRejectedValueOnce(new api.ApiError(409, "conflict", "this shortcut is taken in the same scope", "shortcut"));
    vi.mocked(api.createCanned).mockResolvedValueOnce({ ...LIST[1], id: 9 });
    await act(() => render(<CannedManager me={SUPERVISOR} list={LIST} draftBody="Your parcel left today." onChanged={onChanged} onClose={() => {}} />, host));
    await flush();
    // "Save as canned" opens a new response with the composer's text.
    expect((host.querySelector("#canned-body") as HTMLTextAreaElement).value).toBe("Your parcel left today.");
    await act(() => { host.querySelector("form")!.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })); });
    expect(host.querySelector("#canned-title-err")!.textContent).toBe("Give it a title.");
    expect(api.createCanned).not.toHaveBeenCalled();

    await fill("#canned-title", "Shipped");
    await fill("#canned-shortcut", "refund");
    await fill("#canned-scope", "team:3");
    await act(() => { host.querySelector("form")!.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })); });
    await flush();
    expect(api.createCanned).toHaveBeenLastCalledWith({ title: "Shipped", body: "Your parcel left today.", shortcut: "refund", scope: "team", team_id: 3 });
    expect(host.querySelector("#canned-shortcut-err")!.textContent).toBe("this shortcut is taken in the same scope");
    expect(onChanged).not.toHaveBeenCalled();

    await fill("#canned-shortcut", "/shipped");
    await act(() => { host.querySelector("form")!.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })); });
    await flush();
    expect(api.createCanned).toHaveBeenLastCalledWith({ title: "Shipped", body: "Your parcel left today.", shortcut: "shipped", scope: "team", team_id: 3 });
    expect(onChanged).toHaveBeenCalled();
    expect(host.querySelector("form")).toBeNull();
  });

  it("edits and deletes a shared response as a supervisor", async () => {
    vi.mocked(api.updateCanned).mockResolvedValue(LIST[0]);
    vi.mocked(api.deleteCanned).mockResolvedValue(undefined);
    vi.stubGlobal("confirm", () => true);
    const onChanged = vi.fn();
    await act(() => render(<CannedManager me={SUPERVISOR} list={LIST} onChanged={onChanged} onClose={() => {}} />, host));
    await flush();
    const greeting = [...host.querySelectorAll("[data-testid=canned-row]")].find((r) => r.textContent!.includes("Greeting"))!;
    await act(() => (greeting.querySelector("button") as HTMLButtonElement).click());
    expect(host.querySelector("#canned-scope")).toBeNull(); // the scope of an existing one stays
    await fill("#canned-body", "Hello {{customer.first_name}}");
    await act(() => { host.querySelector("form")!.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })); });
    await flush();
    expect(api.updateCanned).toHaveBeenCalledWith(1, { title: "Greeting", body: "Hello {{customer.first_name}}", shortcut: "hi" });
    await act(() => (host.querySelector('[aria-label="Delete Refund issued"]') as HTMLButtonElement).click());
    await flush();
    expect(api.deleteCanned).toHaveBeenCalledWith(2);
    expect(onChanged).toHaveBeenCalledTimes(2);
    vi.unstubAllGlobals();
  });
});
