import { useMemo, useState, type ReactNode } from "react";

export interface Column<T> {
  key: string;
  label: string;
  cell(row: T): ReactNode;
  /// What the column sorts by; not sortable without it.
  sort?(row: T): number | string;
  numeric?: boolean;
}

/// A table of rows that sorts by a column header and filters by text, with
/// its empty state said in words.
export function Table<T>({
  id,
  caption,
  columns,
  rows,
  rowKey,
  empty,
  filter,
  initialSort,
}: {
  id?: string;
  caption?: string;
  columns: Column<T>[];
  rows: T[];
  rowKey(row: T): string;
  empty: string;
  /// The text a row is found by; no filter box without it.
  filter?(row: T): string;
  initialSort?: { key: string; descending: boolean };
}) {
  const [sort, setSort] = useState(initialSort ?? null);
  const [query, setQuery] = useState("");
  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    let out = filter && q ? rows.filter((r) => filter(r).toLowerCase().includes(q)) : rows;
    const column = sort && columns.find((c) => c.key === sort.key);
    if (sort && column?.sort) {
      const by = column.sort;
      out = [...out].sort((a, b) => {
        const x = by(a);
        const y = by(b);
        const order = x < y ? -1 : x > y ? 1 : 0;
        return sort.descending ? -order : order;
      });
    }
    return out;
  }, [rows, sort, query, columns, filter]);

  return (
    <div className="table">
      {filter && (
        <label className="filter">
          <span className="visually-hidden">Filter {caption ?? "rows"}</span>
          <input type="search" placeholder="Filter…" value={query} onChange={(e) => setQuery(e.target.value)} />
        </label>
      )}
      <div className="scroll">
        <table id={id}>
          {caption && <caption className="visually-hidden">{caption}</caption>}
          <thead>
            <tr>
              {columns.map((c) => {
                const sorted = sort?.key === c.key ? (sort.descending ? "descending" : "ascending") : undefined;
                return (
                  <th key={c.key} scope="col" aria-sort={sorted} className={c.numeric ? "num" : undefined}>
                    {c.sort ? (
                      <button
                        type="button"
                        className="sort"
                        onClick={() =>
                          setSort({ key: c.key, descending: sort?.key === c.key ? !sort.descending : true })
                        }
                      >
                        {c.label}
                        <span aria-hidden="true">{sorted === "descending" ? " ▾" : sorted === "ascending" ? " ▴" : ""}</span>
                      </button>
                    ) : (
                      c.label
                    )}
                  </th>
                );
              })}
            </tr>
          </thead>
          <tbody>
            {shown.map((row) => (
              <tr key={rowKey(row)} data-key={rowKey(row)}>
                {columns.map((c) => (
                  <td key={c.key} data-label={c.label} className={c.numeric ? "num" : undefined}>
                    {c.cell(row)}
                  </td>
                ))}
              </tr>
            ))}
            {shown.length === 0 && (
              <tr>
                <td colSpan={columns.length} className="empty">
                  {rows.length === 0 ? empty : "Nothing matches the filter."}
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </div>
  );
}
