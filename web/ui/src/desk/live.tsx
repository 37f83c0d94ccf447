import { useEffect, useState } from "preact/hooks";
import { agentPresence, queueStats, type Agent } from "./api";
import { duration, label } from "./format";
import type { Socket } from "./socket";

/** routing.QueueStats as the supervisor stream carries it. */
interface QueueStats {
  queue_id: number;
  name: string;
  waiting: number;
  offered: number;
  longest_wait_seconds: number;
  ewt_seconds: number;
  agents_available: number;
  agents_busy: number;
  answered_today: number;
  abandoned_today: number;
  service_level_today: number;
  service_level_target?: { seconds?: number; percent?: number };
}

interface AgentState {
  agent_id: number;
  state: string;
  reason?: string;
  since?: string;
}

/** Supervisors' live view: queues and agents, updated by the supervisor stream. */
export function LiveQueues({ socket, agents }: { socket: Socket; agents: Map<number, Agent> }) {
  const [stats, setStats] = useState<QueueStats[] | null>(null);
  const [states, setStates] = useState<Map<number, AgentState>>(new Map());
  const [at, setAt] = useState<Date | null>(null);
  useEffect(() => {
    const load = () => queueStats().then((l) => {
      setStats(l.items);
      setAt(new Date());
    }, () => {});
    load();
    // The supervisor stream pushes updates; without a live connection, poll.
    const poll = setInterval(() => socket.state !== "open" && load(), 10000);
    agentPresence().then((l) => setStates((m) => {
      const next = new Map(m);
      for (const p of l.items as AgentState[]) if (!next.has(p.agent_id)) next.set(p.agent_id, p);
      return next;
    }), () => {});
    const offs = [
      socket.on("queue_stats", (d) => {
        setStats(Array.isArray(d) ? d : d.queues ?? d.items ?? []);
        setAt(new Date());
      }),
      socket.on("presence", (d: AgentState) => {
        if (d?.agent_id) setStates((m) => new Map(m).set(d.agent_id, d));
      }),
    ];
    return () => {
      clearInterval(poll);
      offs.forEach((f) => f());
    };
  }, []);

  return (
    <section class="live" aria-labelledby="live-title">
      <h2 id="live-title">Live queues</h2>
      <p class="muted" role="status">{at ? `Updated ${at.toLocaleTimeString()}` : "Waiting for the first update…"}</p>
      <table class="grid">
        <caption class="sr-only">Queues</caption>
        <thead>
          <tr>
            <th scope="col">Queue</th><th scope="col">Waiting</th><th scope="col">Offered</th><th scope="col">Longest wait</th>
            <th scope="col">EWT</th><th scope="col">Available</th><th scope="col">Busy</th><th scope="col">Answered</th>
            <th scope="col">Abandoned</th><th scope="col">Service level</th>
          </tr>
        </thead>
        <tbody>
          {(stats ?? []).map((q) => {
            const target = q.service_level_target?.percent;
            const bad = target !== undefined && q.answered_today + q.abandoned_today > 0 && q.service_level_today < target;
            return (
              <tr key={q.queue_id}>
                <th scope="row">{q.name}</th>
                <td class={q.waiting > 0 ? "warn" : ""}>{q.waiting}</td>
                <td>{q.offered}</td>
                <td>{q.waiting ? duration(q.longest_wait_seconds) : "—"}</td>
                <td>{duration(q.ewt_seconds)}</td>
                <td>{q.agents_available}</td>
                <td>{q.agents_busy}</td>
                <td>{q.answered_today}</td>
                <td>{q.abandoned_today}</td>
                <td class={bad ? "bad" : ""}>
                  {q.answered_today + q.abandoned_today > 0 ? `${Math.round(q.service_level_today)}%` : "—"}
                  {target !== undefined ? ` / ${target}%` : ""}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h3>Agents</h3>
      <ul class="agent-states">
        {[...agents.values()].filter((a) => a.role === "agent").map((a) => {
          const s = states.get(a.id);
          return (
            <li class={`presence-${s?.state ?? "offline"}`}>
              <span class="dot" aria-hidden="true" /> {a.name}{" "}
              <span class="muted">{label(s?.state ?? "offline")}{s?.reason ? ` (${s.reason})` : ""}</span>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
