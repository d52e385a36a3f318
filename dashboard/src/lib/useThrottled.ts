import { useEffect, useRef, useState } from "react";

/// `value`, passed on at most once every `ms`: views that load a page on
/// each change reload a few times a second at most, whatever the feed's rate.
export function useThrottled<T>(value: T, ms: number): T {
  const [shown, setShown] = useState(value);
  const last = useRef(0);
  useEffect(() => {
    const wait = last.current + ms - Date.now();
    const timer = setTimeout(
      () => {
        last.current = Date.now();
        setShown(value);
      },
      Math.max(wait, 0),
    );
    return () => clearTimeout(timer);
  }, [value, ms]);
  return shown;
}
