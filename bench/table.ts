/** Printing the bench's figures as aligned text tables. */

export function cell(value: string | number): string {
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return '–';
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/** The first `leftColumns` columns (labels) are aligned left, the others (figures) right. */
export function printTable(title: string, header: string[], rows: (string | number)[][], leftColumns = 1): void {
  const lines = [header, ...rows.map((row) => row.map(cell))];
  const widths = header.map((_, i) => Math.max(...lines.map((line) => line[i].length)));
  const format = (line: string[]) => line.map((text, i) => (i < leftColumns ? text.padEnd(widths[i]) : text.padStart(widths[i]))).join('  ');
  console.log(`\n${title}`);
  console.log(format(lines[0]));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  lines.slice(1).forEach((line) => console.log(format(line)));
}
