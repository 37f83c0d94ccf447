// status.tsx: the ticket's status picker — the base statuses with the
// account's custom statuses grouped under the one each maps to. Solving and
// closing go through the wrap-up dialog, never straight from here.
import { useEffect, useState } from "preact/hooks";
import { STATUSES, statuses, type CustomStatus, type Status, type Ticket } from "./api";
import { label } from "./format";

/** What a choice in the picker means. */
export type StatusChoice = { status: Status } | { custom: CustomStatus };

export interface StatusGroup {
  base: Status;
  /** Whether the base status itself may be chosen here. */
  baseOption: boolean;
  custom: CustomStatus[];
}

const done = (s: Status) => s === "solved" || s === "closed";

/** The picker's groups: each base status with its custom statuses. Solved
 * and closed are offered only as they are now (the wrap-up dialog sets
 * them); their custom statuses are offered and open the wrap-up. */
export function statusGroups(custom: CustomStatus[], current: Status, base: Status[] = STATUSES): StatusGroup[] {
  return base
    .map((b) => ({ base: b, baseOption: !done(b) || b === current, custom: custom.filter((c) => c.maps_to === b) }))
    .filter((g) => g.baseOption || g.custom.length > 0);
}

/** The select's value for a ticket. */
export const statusValue = (t: Pick<Ticket, "status" | "custom_status">) => (t.custom_status ? `custom:${t.custom_status}` : t.status);

export function StatusSelect(props: { ticket: Ticket; onChoose: (c: StatusChoice) => void }) {
  const t = props.ticket;
  const [custom, setCustom] = useState<CustomStatus[]>([]);
  const [base, setBase] = useState<Status[]>(STATUSES);
  useEffect(() => {
    statuses().then((l) => {
      setCustom(l.items);
      if (l.base?.length) setBase(l.base);
    }, () => {});
  }, []);
  const groups = statusGroups(custom, t.status, base);
  const known = custom.some((c) => c.name === t.custom_status);
  return (
    <select aria-label="Status" data-testid="status" value={statusValue(t)} onChange={(e) => {
      const v = e.currentTarget.value;
      // Until the server answers, the select shows the ticket as it is.
      e.currentTarget.value = statusValue(t);
      if (v.startsWith("custom:")) {
        const c = custom.find((x) => x.name === v.slice(7));
        if (c) props.onChoose({ custom: c });
      } else props.onChoose({ status: v as Status });
    }}>
      {t.custom_status && !known && <option value={statusValue(t)}>{label(t.custom_status)}</option>}
      {groups.map((g) =>
        g.custom.length ? (
          <optgroup label={label(g.base)}>
            {g.baseOption && <option value={g.base}>{label(g.base)}</option>}
            {g.custom.map((c) => <option value={`custom:${c.name}`}>{label(c.name)}{done(c.maps_to) ? " (wrap up)" : ""}</option>)}
          </optgroup>
        ) : (
          <option value={g.base}>{label(g.base)}</option>
        ),
      )}
    </select>
  );
}
