import { useApp, type Window } from "../app/context";

const CHOICES: Window[] = ["1h", "24h", "7d"];

export function WindowPicker() {
  const { window, setWindow } = useApp();
  return (
    <fieldset className="segmented" aria-label="Time window">
      {CHOICES.map((w) => (
        <label key={w} className={w === window ? "on" : undefined}>
          <input type="radio" name="window" value={w} checked={w === window} onChange={() => setWindow(w)} />
          {w}
        </label>
      ))}
    </fieldset>
  );
}
