import { useEffect } from "react";
import type { Toast } from "../live/reducer";
import { Link } from "../lib/router";

const SHOWN_MS = 8000;

function One({ toast, dismiss }: { toast: Toast; dismiss(id: number): void }) {
  useEffect(() => {
    const timer = setTimeout(() => dismiss(toast.id), SHOWN_MS);
    return () => clearTimeout(timer);
  }, [toast.id, dismiss]);
  return (
    <div className={`toast ${toast.tone}`} role="status">
      {toast.href ? <Link to={toast.href}>{toast.text}</Link> : <span>{toast.text}</span>}
      <button type="button" className="close" aria-label="Dismiss" onClick={() => dismiss(toast.id)}>
        ×
      </button>
    </div>
  );
}

export function Toasts({ toasts, dismiss }: { toasts: Toast[]; dismiss(id: number): void }) {
  return (
    <div className="toasts" aria-live="polite">
      {toasts.map((t) => (
        <One key={t.id} toast={t} dismiss={dismiss} />
      ))}
    </div>
  );
}
