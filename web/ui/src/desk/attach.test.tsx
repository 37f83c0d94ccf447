// @vitest-environment happy-dom
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, messageAttachments, uploadAttachment, type Attachment, type Message } from "./api";
import { AttachmentList, PARALLEL_UPLOADS, useUploads } from "./attach";
import { statusGroups, statusValue } from "./status";

/** XMLHttpRequest as the upload uses it; the test plays the server. */
class FakeXHR {
  static last: FakeXHR;
  method = "";
  url = "";
  status = 0;
  responseText = "";
  withCredentials = false;
  headers: Record<string, string> = {};
  body: any;
  upload: { onprogress?: (e: { lengthComputable: boolean; loaded: number; total: number }) => void } = {};
  onload?: () => void;
  onerror?: () => void;
  onabort?: () => void;
  constructor() {
    FakeXHR.last = this;
  }
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(k: string, v: string) {
    this.headers[k] = v;
  }
  send(body: any) {
    this.body = body;
  }
  abort() {
    this.onabort?.();
  }
  answer(status: number, body: unknown) {
    this.status = status;
    this.responseText = typeof body === "string" ? body : JSON.stringify(body);
    this.onload?.();
  }
}

afterEach(() => vi.unstubAllGlobals());

describe("uploadAttachment", () => {
  const file = new File(["hello"], "notes.txt", { type: "text/plain" });

  it("posts the file as multipart field file and reports progress", async () => {
    vi.stubGlobal("XMLHttpRequest", FakeXHR);
    const progress: number[] = [];
    const done = uploadAttachment(file, { onProgress: (p) => progress.push(p) });
    const x = FakeXHR.last;
    expect([x.method, x.url, x.withCredentials]).toEqual(["POST", "/api/v1/attachments", true]);
    expect((x.body as FormData).get("file")).toBeInstanceOf(File);
    expect(((x.body as FormData).get("file") as File).name).toBe("notes.txt");
    x.upload.onprogress?.({ lengthComputable: true, loaded: 50, total: 200 });
    const att = { id: 5, filename: "notes.txt", content_type: "text/plain", size: 5, sha256: "ab", url: "/api/v1/attachments/5/content" };
    x.answer(201, att);
    expect(await done).toEqual(att);
    expect(progress).toEqual([0.25, 1]);
  });

  it.each([
    [413, { error: { kind: "too_large", message: "the file is larger than 25 MB", field: "file" } }, "too_large", "the file is larger than 25 MB", "file"],
    [422, { error: { kind: "invalid", message: "the file is empty", field: "file" } }, "invalid", "the file is empty", "file"],
    [413, "<html>proxy says no</html>", "too_large", "The file is too large.", undefined],
    [500, { error: { kind: "internal", message: "internal error (id x)" } }, "internal", "internal error (id x)", undefined],
  ])("rejects a %i with the server's message", async (status, body, kind, message, field) => {
    vi.stubGlobal("XMLHttpRequest", FakeXHR);
    const done = uploadAttachment(file);
    FakeXHR.last.answer(status, body);
    const err = await done.catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect([err.status, err.kind, err.message, err.field]).toEqual([status, kind, message, field]);
  });

  it("is cancelled through its signal", async () => {
    vi.stubGlobal("XMLHttpRequest", FakeXHR);
    const ctl = new AbortController();
    const done = uploadAttachment(file, { signal: ctl.signal });
    ctl.abort();
    expect((await done.catch((e) => e)).name).toBe("AbortError");
  });
});

describe("message attachments", () => {
  const base = { id: 1, ticket_id: 2, customer_id: 3, kind: "note", direction: "internal", author_id: 4, body: "", created_at: "" } as Message;

  it("reads the message's attachments, else the older meta lists", () => {
    expect(messageAttachments({ ...base, attachments: [{ id: 9, filename: "a.png", content_type: "image/png", size: 10, url: "/u/9" }] }))
      .toEqual([{ id: 9, filename: "a.png", content_type: "image/png", size: 10, url: "/u/9" }]);
    expect(messageAttachments({ ...base, meta: { email: { attachments: [{ sha256: "ff", filename: "b.pdf", size: 3 }, { filename: "logo.gif", inline: true }] } } }))
      .toEqual([{ id: "ff", filename: "b.pdf", size: 3, content_type: undefined, url: undefined }]);
    expect(messageAttachments(base)).toEqual([]);
  });

  it("shows images as thumbnails and every file as a download link", async () => {
    const host = document.body.appendChild(document.createElement("div"));
    await act(() => render(<AttachmentList list={[
      { id: 1, filename: "photo.jpg", content_type: "image/jpeg", size: 2048, url: "/api/v1/attachments/1/content" },
      { id: 2, filename: "invoice.pdf", content_type: "application/pdf", size: 4096, url: "/api/v1/attachments/2/content" },
      { id: 3, filename: "vector.svg", content_type: "image/svg+xml", size: 10, url: "/api/v1/attachments/3/content" },
    ]} />, host));
    const imgs = [...host.querySelectorAll("img.thumb")] as HTMLImageElement[];
    expect(imgs.map((i) => [i.getAttribute("src"), i.alt])).toEqual([["/api/v1/attachments/1/content", "photo.jpg"]]);
    const links = [...host.querySelectorAll("a[download]")] as HTMLAnchorElement[];
    expect(links.map((a) => [a.getAttribute("href"), a.getAttribute("download"), a.textContent])).toEqual([
      ["/api/v1/attachments/1/content", "photo.jpg", "⤓ photo.jpg"],
      ["/api/v1/attachments/2/content", "invoice.pdf", "⤓ invoice.pdf"],
      ["/api/v1/attachments/3/content", "vector.svg", "⤓ vector.svg"],
    ]);
    render(null, host);
    host.remove();
  });
});

describe("status picker", () => {
  const custom = [
    { id: 1, name: "waiting for parts", maps_to: "pending" as const },
    { id: 2, name: "escalated", maps_to: "open" as const },
    { id: 3, name: "refunded", maps_to: "solved" as const },
  ];
  it("groups custom statuses under their base; solved and closed only as they are or through a custom status", () => {
    const groups = statusGroups(custom, "open").map((g) => [g.base, g.baseOption, g.custom.map((c) => c.name)]);
    expect(groups).toEqual([
      ["new", true, []],
      ["open", true, ["escalated"]],
      ["pending", true, ["waiting for parts"]],
      ["on_hold", true, []],
      ["solved", false, ["refunded"]],
    ]);
    expect(statusGroups([], "closed").map((g) => g.base)).toEqual(["new", "open", "pending", "on_hold", "closed"]);
  });
  it("names the custom status in the select's value", () => {
    expect(statusValue({ status: "pending", custom_status: "waiting for parts" })).toBe("custom:waiting for parts");
    expect(statusValue({ status: "open" })).toBe("open");
  });
});

describe("useUploads", () => {
  it("runs at most PARALLEL_UPLOADS uploads at once; the rest wait, and one removed while waiting never starts", async () => {
    const started: Array<{ name: string; resolve: (a: Attachment) => void }> = [];
    const fake: typeof uploadAttachment = (f) => new Promise<Attachment>((resolve) => started.push({ name: f.name, resolve }));
    let u!: ReturnType<typeof useUploads>;
    function Probe() {
      u = useUploads(fake);
      return null;
    }
    const root = document.createElement("div");
    await act(() => render(<Probe />, root));
    const files = Array.from({ length: PARALLEL_UPLOADS + 2 }, (_, i) => new File(["x"], `f${i}.txt`));
    await act(() => u.add(files));
    expect(started.map((s) => s.name)).toEqual(["f0.txt", "f1.txt", "f2.txt", "f3.txt"]);
    expect(u.busy).toBe(true);
    await act(() => u.remove(u.items[4].key));
    await act(async () => {
      started[0].resolve({ id: 1, filename: "f0.txt", content_type: "text/plain", size: 1, url: "/api/v1/attachments/1/content" });
      await new Promise((r) => setTimeout(r, 0));
    });
    expect(started.map((s) => s.name)).toEqual(["f0.txt", "f1.txt", "f2.txt", "f3.txt", "f5.txt"]);
    expect(u.ids).toEqual([1]);
    render(null, root);
  });
});
