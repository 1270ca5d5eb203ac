// Your data in the playground: a CSV file chosen or dropped on the page is read and parsed here,
// in the page (papaparse, through normlab/csv-data), and never leaves it. The panel previews it
// (rows, features, the classes with their counts, the label column to pick) and says what is wrong
// with it (file, line and column) before a run. The last file is kept in this browser's IndexedDB,
// so a reload does not lose it. The link holds the file's name and the settings, never the data:
// opened elsewhere it says which file to attach again.
import { csvColumns, parseCsvDataset, type CsvColumns, type ParsedCsvDataset } from 'normlab/csv-data';
import { heldOut, type UserFile } from './config.js';
import type { State } from './state.js';

/** Files larger than this are refused before they are read (the page would hold them twice). */
export const MAX_FILE_BYTES = 200 * 1024 * 1024;
const ACCEPT = '.csv,.tsv,.txt,text/csv,text/tab-separated-values,text/plain';

// ---- the last file, kept in IndexedDB -----------------------------------------------------------

const DB_NAME = 'normlab-playground';
const STORE = 'files';
const LAST = 'last';

interface Stored {
  name: string;
  text: string;
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

async function database(): Promise<IDBDatabase> {
  const open = indexedDB.open(DB_NAME, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE);
  return request(open);
}

/** The store's transaction, done when it commits. */
async function withStore<T>(mode: IDBTransactionMode, use: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await database();
  try {
    const tx = db.transaction(STORE, mode);
    const result = request(use(tx.objectStore(STORE)));
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onabort = tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    });
    return await result;
  } finally {
    db.close();
  }
}

const saveLast = (file: Stored) => withStore('readwrite', (s) => s.put({ name: file.name, text: file.text }, LAST));
const loadLast = () => withStore<Stored | undefined>('readonly', (s) => s.get(LAST) as IDBRequest<Stored | undefined>);
const forgetLast = () => withStore('readwrite', (s) => s.delete(LAST));

// ---- the panel ----------------------------------------------------------------------------------

export interface UserDataEvents {
  /**
   * A file was chosen or dropped: the state's dataFile becomes its name, and its label column the
   * one suggested ('' for the last; a name, or an index without a header).
   */
  file(name: string, labelColumn: string): void;
  /** The label column was picked ('' for the last column). */
  labelColumn(value: string): void;
}

/** An element with properties (id, className, type, ...) and children. */
function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...children);
  return e;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

/** The "Your data" panel of the Data settings: file input and drop zone, preview, label column. */
export class UserDataPanel {
  readonly element: HTMLElement;
  #events: UserDataEvents;
  #file: Stored | null = null;
  /** The file's columns (from its first rows), for the label column menu even when it does not parse. */
  #columns: CsvColumns | null = null;
  #parsed: ParsedCsvDataset | null = null;
  #error = '';
  #storeNote = '';
  /** What the last parse was of (file, label column, image shape): parse again only when it changes. */
  #parsedFor = '';
  #state: State | null = null;
  readonly #input: HTMLInputElement;
  readonly #zone: HTMLElement;
  readonly #status: HTMLElement;
  readonly #preview: HTMLElement;
  readonly #errorBox: HTMLElement;
  readonly #labelSelect: HTMLSelectElement;
  readonly #labelField: HTMLElement;
  readonly #forget: HTMLButtonElement;

  constructor(events: UserDataEvents) {
    this.#events = events;
    this.#input = el('input', { type: 'file', accept: ACCEPT, id: 'user-data-file', className: 'file-input' });
    this.#input.setAttribute('aria-describedby', 'user-data-privacy');
    this.#input.addEventListener('change', () => {
      const f = this.#input.files?.[0];
      if (f) void this.readFile(f);
      this.#input.value = '';
    });
    const choose = el('label', { htmlFor: 'user-data-file', className: 'button small' }, 'Choose a CSV file');
    this.#zone = el('div', { className: 'drop-zone', id: 'user-data-drop' }, choose, ' or drop one here');
    this.#zone.append(this.#input);
    this.#zone.addEventListener('dragover', (e) => {
      e.preventDefault();
      this.#zone.classList.add('over');
    });
    this.#zone.addEventListener('dragleave', () => this.#zone.classList.remove('over'));
    this.#zone.addEventListener('drop', (e) => {
      e.preventDefault();
      e.stopPropagation();
      this.#zone.classList.remove('over');
      const f = e.dataTransfer?.files[0];
      if (f) void this.readFile(f);
    });
    const privacy = el('p', { className: 'help', id: 'user-data-privacy' },
      'The file is read and parsed in this page and never leaves it: nothing is uploaded. ' +
      'This browser keeps the last file so a reload does not lose it; a shared link names the file, the person who opens it attaches it.');
    this.#status = el('p', { className: 'user-data-status', id: 'user-data-status' });
    this.#status.setAttribute('aria-live', 'polite');
    this.#errorBox = el('p', { className: 'field-error', id: 'user-data-error' });
    this.#errorBox.setAttribute('role', 'alert');
    this.#labelSelect = el('select', { id: 'user-data-label' });
    this.#labelSelect.addEventListener('change', () => this.#events.labelColumn(this.#labelSelect.value));
    this.#labelField = el('div', { className: 'field' }, el('label', { htmlFor: 'user-data-label' }, 'Label column'), this.#labelSelect);
    this.#preview = el('div', { className: 'user-data-preview', id: 'user-data-preview' });
    this.#forget = el('button', { type: 'button', className: 'small', id: 'user-data-forget' }, 'Forget the file');
    this.#forget.addEventListener('click', () => {
      this.#file = null;
      this.#columns = null;
      this.#parsed = null;
      this.#error = '';
      this.#parsedFor = '';
      void forgetLast().catch(() => {});
      this.#render();
    });
    this.element = el('div', { className: 'user-data', id: 'user-data' },
      this.#zone, privacy, this.#status, this.#errorBox, this.#labelField, this.#preview, this.#forget);
    this.#render();
  }

  /** The file, when it parses with the current settings (what a run needs). */
  get file(): UserFile | null {
    const p = this.#parsed;
    return this.#file && p ? { name: this.#file.name, text: this.#file.text, rows: p.lines.length, columns: p.columns.length } : null;
  }

  /** The parsed examples (for the decision maps' frame), when the file parses. */
  get parsed(): ParsedCsvDataset | null {
    return this.#parsed;
  }

  /** Why the file cannot be used with the current settings ('' when it can, or there is none). */
  get error(): string {
    return this.#error;
  }

  /** The file's name ('' without one), whether or not it parses. */
  get fileName(): string {
    return this.#file?.name ?? '';
  }

  /**
   * Loads the last file from IndexedDB, unless a link asks for another one (`wanted`, its name):
   * that one the user attaches. Gives the loaded file's name, or '' when none was loaded.
   */
  async restore(wanted: string): Promise<string> {
    let last: Stored | undefined;
    try {
      last = await loadLast();
    } catch {
      return '';
    }
    if (this.#file || !last || typeof last.name !== 'string' || typeof last.text !== 'string') return '';
    if (wanted !== '' && wanted !== last.name) return '';
    this.#setFile({ name: last.name, text: last.text });
    return last.name;
  }

  /** Reads a chosen or dropped file, keeps it, and reports it (the page then updates the state). */
  async readFile(f: File): Promise<void> {
    if (f.size > MAX_FILE_BYTES) {
      this.#fail(`${f.name}: ${(f.size / 2 ** 20).toFixed(0)} MB is more than the page reads (${MAX_FILE_BYTES / 2 ** 20} MB); ` +
        `run it with the CLI: npx normlab compare --data ${f.name}`);
      return;
    }
    let text: string;
    try {
      text = await f.text();
    } catch (error) {
      this.#fail(`${f.name}: could not be read (${error instanceof Error ? error.message : String(error)})`);
      return;
    }
    const file = { name: f.name, text };
    this.#setFile(file);
    this.#storeNote = '';
    try {
      await saveLast(file);
    } catch (error) {
      this.#storeNote = `This browser did not keep the file (${error instanceof Error ? error.message : String(error)}): a reload will ask for it again.`;
    }
    const c = this.#columns;
    this.#events.file(f.name, c && c.suggestedLabel !== c.columns.length - 1 ? labelValue(c.columns, c.header, c.suggestedLabel) : '');
  }

  #setFile(file: Stored): void {
    this.#file = file;
    this.#parsedFor = '';
    try {
      this.#columns = csvColumns(file.text, { file: file.name, delimiter: tsv(file.name) });
    } catch {
      this.#columns = null;  // the full parse says what is wrong
    }
  }

  #fail(message: string): void {
    this.#error = message;
    this.#render();
  }

  /** Shows the state's settings: parses the file again when its label column or image shape changed. */
  update(state: State): void {
    this.#state = state;
    this.element.hidden = state.dataset !== 'user';
    const key = this.#file ? `${this.#file.name}\u0000${this.#file.text.length}\u0000${state.labelColumn}\u0000${state.imageShape.join(',')}` : '';
    if (key !== this.#parsedFor) {
      this.#parsedFor = key;
      this.#parsed = null;
      this.#error = '';
      if (this.#file && state.dataset === 'user') {
        try {
          const labelColumn = state.labelColumn === '' ? undefined : state.labelColumn;
          this.#parsed = parseCsvDataset(this.#file.text, {
            file: this.#file.name, labelColumn, imageShape: state.imageShape.length === 3 ? state.imageShape : undefined,
            delimiter: tsv(this.#file.name),
          });
        } catch (error) {
          this.#error = error instanceof Error ? error.message : String(error);
        }
      } else if (!this.#file) {
        this.#parsedFor = '';
      }
    }
    this.#render();
  }

  #render(): void {
    const state = this.#state;
    const file = this.#file;
    const wanted = state?.dataFile ?? '';
    this.#forget.hidden = !file;
    if (!file) {
      this.#status.textContent = wanted
        ? `These settings were made with the file "${wanted}": choose or drop it to run them (the link holds the settings, not the data).`
        : 'No file yet: a row per example, a header row optional, the label in the last column unless you pick another.';
    } else {
      this.#status.textContent = `${file.name} (${(new Blob([file.text]).size / 1024).toFixed(1)} KB)` +
        (wanted && wanted !== file.name ? ` — the link named "${wanted}"` : '') + (this.#storeNote ? `. ${this.#storeNote}` : '');
    }
    this.#errorBox.textContent = this.#error;
    this.#errorBox.hidden = this.#error === '';
    const p = this.#parsed;
    const c = this.#columns;
    this.#labelField.hidden = !c;
    if (c) this.#fillLabels(c.columns, c.header, p ? p.labelColumn : pickedColumn(c, state?.labelColumn ?? ''));
    this.#preview.replaceChildren();
    if (!p || !state) return;
    const n = p.lines.length;
    const features = p.shape.reduce((a, b) => a * b, 1);
    const test = heldOut(n, state.testFraction);
    const summary = el('p', { className: 'user-data-summary' },
      `${plural(n, 'row')} · ${plural(features, 'feature')}${p.shape.length === 3 ? ` (images ${p.shape.join('×')})` : ''} · ` +
      `${plural(p.classNames.length, 'class', 'classes')} · ${p.header ? 'header row' : 'no header row'} · ` +
      `delimiter ${p.delimiter === '\t' ? 'tab' : `"${p.delimiter}"`} · ${plural(n - test, 'row')} for training, ${test} held out for testing`);
    const classes = el('table', { className: 'class-counts', id: 'user-data-classes' });
    classes.append(el('caption', {}, `Classes (label column "${p.columns[p.labelColumn]}")`));
    const head = el('tr', {}, el('th', { scope: 'col' }, 'class'), el('th', { scope: 'col' }, 'rows'));
    classes.append(el('thead', {}, head));
    const body = el('tbody');
    const shown = 12;
    p.classNames.slice(0, shown).forEach((c, i) => {
      body.append(el('tr', {}, el('th', { scope: 'row' }, c), el('td', {}, String(p.classCounts[i]))));
    });
    if (p.classNames.length > shown) {
      const rest = p.classCounts.slice(shown).reduce((a, b) => a + b, 0);
      body.append(el('tr', {}, el('th', { scope: 'row' }, `${p.classNames.length - shown} more`), el('td', {}, String(rest))));
    }
    classes.append(body);
    this.#preview.append(summary, classes);
  }

  #fillLabels(columns: string[], header: boolean, selected: number): void {
    const values = columns.map((_, i) => labelValue(columns, header, i));
    const same = this.#labelSelect.options.length === columns.length &&
      values.every((v, i) => this.#labelSelect.options[i].value === v);
    if (!same) {
      this.#labelSelect.replaceChildren(...columns.map((c, i) => new Option(header ? `${c} (column ${i + 1})` : c, values[i])));
    }
    this.#labelSelect.value = selected >= 0 ? values[selected] : '';
  }
}

/** The delimiter of a .tsv file (others: detected). */
function tsv(name: string): string | undefined {
  return /\.tsv$/i.test(name) ? '\t' : undefined;
}

/**
 * How the state names column i as the label column: its header name when that names it alone
 * (and is not a number, which would read as an index), else its 0-based index.
 */
function labelValue(columns: readonly string[], header: boolean, i: number): string {
  const c = columns[i];
  return header && c !== '' && columns.indexOf(c) === i && !/^-?\d+$/.test(c) ? c : String(i);
}

/** The column the state's label column names ('' for the last), or -1 for none. */
function pickedColumn(c: CsvColumns, label: string): number {
  if (label === '') return c.columns.length - 1;
  const byName = c.header ? c.columns.indexOf(label) : -1;
  if (byName >= 0) return byName;
  if (!/^-?\d+$/.test(label)) return -1;
  const i = Number(label) < 0 ? c.columns.length + Number(label) : Number(label);
  return i >= 0 && i < c.columns.length ? i : -1;
}
