import { useState } from "react";

/// Cursor paging as the API does it: the page tokens walked back through,
/// the last one the page on screen ("" the newest).
export function usePages() {
  const [pages, setPages] = useState<string[]>([""]);
  return {
    token: pages[pages.length - 1] ?? "",
    onFirst: pages.length === 1,
    newest: () => setPages([""]),
    older: (next: string | null | undefined) => {
      if (next) setPages((p) => [...p, next]);
    },
  };
}
