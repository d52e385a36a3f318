import { useEffect, useRef } from "react";

export interface Question {
  text: string;
  ok: string;
  answer(yes: boolean): void;
}

/// A modal question (the browser's own dialog element: focus is trapped and
/// Escape answers no).
export function Confirm({ question }: { question: Question | null }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (question && !d.open) d.showModal();
    if (!question && d.open) d.close();
  }, [question]);
  return (
    <dialog ref={dialog} className="confirm" onCancel={() => question?.answer(false)} aria-labelledby="confirm-text">
      <p id="confirm-text">{question?.text}</p>
      <div className="actions">
        <button type="button" onClick={() => question?.answer(false)}>
          Cancel
        </button>
        <button type="button" className="danger" autoFocus onClick={() => question?.answer(true)}>
          {question?.ok}
        </button>
      </div>
    </dialog>
  );
}
