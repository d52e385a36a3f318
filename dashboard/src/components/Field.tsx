import type { ReactNode } from "react";

/// A labelled input with its problem, if any, said next to it and tied to
/// it for screen readers.
export function Field({
  label,
  problem,
  hint,
  children,
  id,
}: {
  label: string;
  problem?: string | undefined;
  hint?: ReactNode;
  children: ReactNode;
  id: string;
}) {
  return (
    <div className={problem ? "field invalid" : "field"}>
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && !problem && <small id={`${id}-hint`}>{hint}</small>}
      {problem && (
        <small className="problem-text" id={`${id}-problem`} role="alert">
          {problem}
        </small>
      )}
    </div>
  );
}
