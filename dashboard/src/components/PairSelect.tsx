import type { Pair } from "../api/types";
import { pairName } from "../lib/format";

export function PairSelect({
  pairs,
  name = "pair",
  value,
  onChange,
  anyLabel,
  invalid,
  id,
}: {
  pairs: Pair[];
  name?: string;
  value: string;
  onChange(id: string): void;
  /// The label of an "every pair" choice, if there is one.
  anyLabel?: string;
  invalid?: boolean;
  id?: string;
}) {
  return (
    <select id={id} name={name} value={value} onChange={(e) => onChange(e.target.value)} aria-invalid={invalid || undefined}>
      {anyLabel !== undefined ? <option value="">{anyLabel}</option> : <option value="">Choose a pair…</option>}
      {pairs.map((p) => (
        <option key={p.id} value={p.id}>
          {pairName(p)}
          {p.is_high_priority ? " (high priority)" : ""}
        </option>
      ))}
    </select>
  );
}
