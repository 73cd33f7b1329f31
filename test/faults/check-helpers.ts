/** What the checkers share: grouping the history's lines, and how they print a time. */

export function groupBy<T, K>(items: T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** A time of day to the millisecond (UTC), as the violations print it. */
export function iso(time: number): string {
  return new Date(time).toISOString().slice(11, 23);
}
