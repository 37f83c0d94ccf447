// @vitest-environment happy-dom
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Canned } from "./api";
import { CannedPicker, canChange, matchCanned, menuKey, slashToken } from "./canned";

const c = (id: number, title: string, shortcut: string, body = "", scope: Canned["scope"] = "account", agent_id: number | null = null): Canned =>
  ({ id, title, shortcut, body, scope, team_id: scope === "team" ? 3 : null, agent_id });

const LIST = [
  c(1, "Refund issued", "refund", "We refunded {{ticket.id}}."),
  c(2, "Greeting", "hi", "Hi {{customer.first_name}},"),
  c(3, "Order status", "where", "Your refund is not the question here."),
  c(4, "Quick refund note", "qr", "..."),
  c(5, "Highlights", "", "new features"),
];

describe("slashToken", () => {
  it.each([
    ["/ref", 4, { start: 0, query: "ref" }],
    ["Hello /RE", 9, { start: 6, query: "re" }],
    ["Hello\n/", 7, { start: 6, query: "" }],
    ["and/or", 6, null],
    ["see https://x.test/a", 20, null],
    ["/refund now", 11, null],
    ["/refund now", 7, { start: 0, query: "refund" }],
    ["/this-is-far-too-long-for-a-shortcut-really", 44, null],
  ])("%j at %i", (text, caret, want) => {
    expect(slashToken(text, caret)).toEqual(want);
  });
});

describe("matchCanned", () => {
  it("ranks shortcut, then title, then body", () => {
    expect(matchCanned(LIST, "refund").map((x) => x.id)).toEqual([1, 4, 3]);
    expect(matchCanned(LIST, "/hi").map((x) => x.id)).toEqual([2, 5]);
    expect(matchCanned(LIST, "").map((x) => x.id)).toEqual([1, 2, 3, 4, 5]);
  });
  it("matches only shortcuts and title words for the / menu", () => {
    expect(matchCanned(LIST, "refund", true).map((x) => x.id)).toEqual([1, 4]);
    expect(matchCanned(LIST, "features", true)).toEqual([]);
  });
});

describe("menuKey", () => {
  it("moves round the list, picks and closes", () => {
    expect(menuKey("ArrowDown", 0, 3)).toBe(1);
    expect(menuKey("ArrowDown", 2, 3)).toBe(0);
    expect(menuKey("ArrowUp", 0, 3)).toBe(2);
    expect(menuKey("End", 0, 3)).toBe(2);
    expect(menuKey("Home", 2, 3)).toBe(0);
    expect(menuKey("Enter", 1, 3)).toBe("pick");
    expect(menuKey("Tab", 1, 3)).toBe("pick");
    expect(menuKey("Enter", 0, 0)).toBe(null);
    expect(menuKey("Escape", 1, 3)).toBe("close");
    expect(menuKey("a", 1, 3)).toBe(null);
  });
});

describe("canChange", () => {
  const agent = { id: 7, email: "", name: "A", role: "agent" as const, team_ids: [] };
  const sup = { ...agent, id: 8, role: "supervisor" as const };
  it("lets owners change personal ones and supervisors shared ones", () => {
    expect(canChange(c(1, "t", "", "", "personal", 7), agent)).toBe(true);
    expect(canChange(c(1, "t", "", "", "personal", 7), sup)).toBe(false);
    expect(canChange(c(1, "t", "", "", "account"), agent)).toBe(false);
    expect(canChange(c(1, "t", "", "", "team"), sup)).toBe(true);
  });
});

describe("CannedPicker", () => {
  let host: HTMLDivElement;
  afterEach(() => {
    render(null, host);
    host.remove();
  });

  function key(el: Element, k: string) {
    el.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true }));
  }

  it("searches, moves with the arrows and inserts with Enter", async () => {
    host = document.body.appendChild(document.createElement("div"));
    const onPick = vi.fn();
    const onClose = vi.fn();
    await act(() => render(<CannedPicker list={LIST} teamNames={new Map()} onPick={onPick} onClose={onClose} onManage={() => {}} />, host));
    const input = host.querySelector("input[type=search]") as HTMLInputElement;
    expect(document.activeElement).toBe(input);
    expect(host.querySelectorAll("[role=option]").length).toBe(5);

    input.value = "refund";
    await act(() => { input.dispatchEvent(new Event("input", { bubbles: true })); });
    const titles = () => [...host.querySelectorAll("[role=option] .canned-title")].map((e) => e.textContent);
    expect(titles()).toEqual(["Refund issued", "Quick refund note", "Order status"]);
    expect(host.querySelector("[aria-selected=true] .canned-title")!.textContent).toBe("Refund issued");

    await act(() => key(input, "ArrowDown"));
    expect(host.querySelector("[aria-selected=true] .canned-title")!.textContent).toBe("Quick refund note");
    expect(input.getAttribute("aria-activedescendant")).toBe("canned-picker-options-4");
    await act(() => key(input, "ArrowUp"));
    await act(() => key(input, "ArrowUp"));
    expect(host.querySelector("[aria-selected=true] .canned-title")!.textContent).toBe("Order status");
    await act(() => key(input, "Enter"));
    expect(onPick).toHaveBeenCalledWith(LIST[2]);

    await act(() => key(input, "Escape"));
    expect(onClose).toHaveBeenCalled();
  });

  it("says when nothing matches", async () => {
    host = document.body.appendChild(document.createElement("div"));
    await act(() => render(<CannedPicker list={LIST} teamNames={new Map()} onPick={() => {}} onClose={() => {}} onManage={() => {}} />, host));
    const input = host.querySelector("input[type=search]") as HTMLInputElement;
    input.value = "zzz";
    await act(() => { input.dispatchEvent(new Event("input", { bubbles: true })); });
    expect(host.textContent).toContain("No canned response matches.");
  });
});
