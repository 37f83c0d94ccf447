// attach.tsx: files in the desk — uploads from the composer (picked,
// pasted or dropped; each with its progress, its error and a remove
// button) and the files of a message in the timeline (a download link; a
// thumbnail for images). The upload is POST /attachments; the message then
// lists the uploads' ids in attachment_ids.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, uploadAttachment, type Attachment } from "./api";
import { bytes } from "./format";

/** One file on its way to the server, or there. */
export interface Upload {
  key: string;
  filename: string;
  size: number;
  /** 0..1 while uploading. */
  progress: number;
  /** The server's answer once stored. */
  attachment?: Attachment;
  /** The server's message when it refused the file. */
  error?: string;
  /** A local preview of an image (an object URL), revoked on removal. */
  preview?: string;
}

type Uploader = typeof uploadAttachment;

let seq = 0;

/** Uploads running at once: the server takes 4 in progress per agent and
 * refuses more (429); the rest wait their turn. */
export const PARALLEL_UPLOADS = 4;

/** The composer's uploads: add starts an upload per file (PARALLEL_UPLOADS
 * at once, the others queued), remove cancels one running or queued. */
export function useUploads(upload: Uploader = uploadAttachment) {
  const [items, setItems] = useState<Upload[]>([]);
  const aborts = useRef(new Map<string, AbortController>());
  const live = useRef(true);
  const queue = useRef<Array<() => Promise<unknown>>>([]);
  const running = useRef(0);

  const pump = () => {
    while (running.current < PARALLEL_UPLOADS && queue.current.length > 0) {
      running.current++;
      queue.current.shift()!().finally(() => {
        running.current--;
        pump();
      });
    }
  };

  useEffect(() => () => {
    live.current = false;
    aborts.current.forEach((a) => a.abort());
  }, []);

  const patch = (key: string, p: Partial<Upload>) => {
    if (live.current) setItems((old) => old.map((u) => (u.key === key ? { ...u, ...p } : u)));
  };

  function add(files: File[]) {
    const added: Upload[] = files.map((f) => ({
      key: `u${++seq}`, filename: f.name || "pasted file", size: f.size, progress: 0,
      preview: f.type.startsWith("image/") && typeof URL.createObjectURL === "function" ? URL.createObjectURL(f) : undefined,
    }));
    setItems((old) => [...old, ...added]);
    added.forEach((u, i) => {
      const ctl = new AbortController();
      aborts.current.set(u.key, ctl);
      queue.current.push(() => {
        if (ctl.signal.aborted) return Promise.resolve(); // removed while queued
        return upload(files[i], { signal: ctl.signal, onProgress: (p) => patch(u.key, { progress: p }) })
          .then((a) => patch(u.key, { attachment: a, progress: 1 }))
          .catch((err) => {
            if ((err as Error).name === "AbortError") return;
            patch(u.key, { error: err instanceof ApiError || err instanceof Error ? err.message : String(err) });
          })
          .finally(() => aborts.current.delete(u.key));
      });
    });
    pump();
  }

  function remove(key: string) {
    aborts.current.get(key)?.abort();
    setItems((old) => {
      const u = old.find((x) => x.key === key);
      if (u?.preview) URL.revokeObjectURL(u.preview);
      return old.filter((x) => x.key !== key);
    });
  }

  /** Forgets every upload (after the message was sent). */
  function clear() {
    items.forEach((u) => u.preview && URL.revokeObjectURL(u.preview));
    setItems([]);
  }

  return {
    items,
    add,
    remove,
    clear,
    /** Still uploading: sending must wait. */
    busy: items.some((u) => !u.attachment && !u.error),
    /** The stored uploads' ids, for attachment_ids. */
    ids: items.filter((u) => u.attachment?.id !== undefined).map((u) => u.attachment!.id!),
    /** The first refused file's message, for the composer's alert. */
    error: items.find((u) => u.error),
  };
}

/** The files of a paste or a drop (none for plain text). */
export function filesOf(dt: DataTransfer | null): File[] {
  if (!dt) return [];
  if (dt.files && dt.files.length) return Array.from(dt.files);
  const out: File[] = [];
  for (const item of Array.from(dt.items ?? [])) {
    if (item.kind === "file") {
      const f = item.getAsFile();
      if (f) out.push(f);
    }
  }
  return out;
}

/** The composer's files: name, size, progress or error, and remove. */
export function UploadList(props: { items: Upload[]; onRemove: (key: string) => void }) {
  if (!props.items.length) return null;
  return (
    <ul class="attachments uploads" aria-label="Attached files">
      {props.items.map((u) => (
        <li key={u.key} class={u.error ? "upload-failed" : u.attachment ? "upload-done" : "upload-running"} data-testid="upload">
          {u.preview && <img class="upload-thumb" src={u.preview} alt="" />}
          <span class="upload-name">{u.filename}</span> <span class="muted">{bytes(u.size)}</span>{" "}
          {!u.attachment && !u.error && (
            <progress max={1} value={u.progress} aria-label={`Uploading ${u.filename}`}>{Math.round(u.progress * 100)}%</progress>
          )}
          {/* The message itself is in the composer's alert. */}
          {u.error && <span class="error">Not attached</span>}{" "}
          <button type="button" class="link" aria-label={`Remove ${u.filename}`} onClick={() => props.onRemove(u.key)}>×</button>
        </li>
      ))}
    </ul>
  );
}

const isImage = (a: Attachment) => !!a.url && !!a.content_type && /^image\/(png|jpe?g|gif|webp|avif|bmp)$/i.test(a.content_type);

/** A message's files in the timeline: images as thumbnails, every file a
 * download link. */
export function AttachmentList({ list }: { list: Attachment[] }) {
  if (!list.length) return null;
  return (
    <ul class="attachments" aria-label="Attachments">
      {list.map((a) => (
        <li key={String(a.id ?? a.filename)} data-testid="attachment">
          {isImage(a) && (
            <a href={a.url} target="_blank" rel="noopener" class="thumb-link">
              <img class="thumb" src={a.url} alt={a.filename} loading="lazy" />
            </a>
          )}
          {a.url ? <a href={a.url} download={a.filename}>⤓ {a.filename}</a> : <span>{a.filename}</span>}{" "}
          <span class="muted">{bytes(a.size)}</span>
        </li>
      ))}
    </ul>
  );
}
