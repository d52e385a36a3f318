/// Newest and Older, for a list the API pages newest first.
export function Pager({
  onFirst,
  next,
  newest,
  older,
  id,
}: {
  onFirst: boolean;
  next: string | null | undefined;
  newest(): void;
  older(next: string | null | undefined): void;
  /// Prefix of the buttons' ids.
  id?: string;
}) {
  return (
    <>
      <button type="button" id={id && `${id}-latest`} disabled={onFirst} onClick={newest}>
        Newest
      </button>
      <button type="button" id={id && `${id}-older`} disabled={!next} onClick={() => older(next)}>
        Older
      </button>
    </>
  );
}
