// HummingFace keyboard: plays the current design from a multisample held in the browser.
//
// Runs as the `js_on_load` of a Gradio gr.HTML (app.py): Gradio gives `element` (the component's root),
// `props` (props.value = the multisample as JSON, see Studio.keyboard) and `watch` (called when the server
// sends a new multisample). About a hundred lines of plain WebAudio rather than a player library: each key is
// one AudioBufferSourceNode re-pitched by playbackRate from the nearest sample, looped while held, faded on
// release -- no server round trip per key, nothing to vendor.
//
// Played from the on-screen keys (mouse and touch, through pointer events), the computer keyboard (two
// QWERTY rows, "-" and "=" for octave down and up) and Web MIDI inputs where the browser offers them.
// `data-notes` on the keyboard counts the notes started (the browser test reads it).

const FIRST_WHITE = [0, 2, 4, 5, 7, 9, 11];
const ROWS = { z: 0, s: 1, x: 2, d: 3, c: 4, v: 5, g: 6, b: 7, h: 8, n: 9, j: 10, m: 11, ",": 12, l: 13, ".": 14,
  q: 12, 2: 13, w: 14, 3: 15, e: 16, r: 17, 5: 18, t: 19, 6: 20, y: 21, 7: 22, u: 23, i: 24, 9: 25, o: 26,
  0: 27, p: 28 };  // lower row from C of the octave, upper row from the next C
const KEYS = 37;  // three octaves and a top C on screen
const POLYPHONY = 32;

const board = element.querySelector(".hf-keys");
const status = element.querySelector(".hf-status");
const state = { ctx: null, master: null, meta: null, buffers: [], voices: new Map(), octave: 3, started: 0 };

function isBlack(note) { return !FIRST_WHITE.includes(((note % 12) + 12) % 12); }
function lowest() { return 12 * (state.octave + 1); }  // the lowest key: C of `state.octave` (C3 = MIDI 48)

function drawKeys() {
  // White keys in a row, black keys placed over the gaps between them.
  board.replaceChildren();
  const whites = [];
  for (let n = lowest(); n < lowest() + KEYS; n++) if (!isBlack(n)) whites.push(n);
  const width = 100 / whites.length;
  for (let n = lowest(); n < lowest() + KEYS; n++) {
    const key = document.createElement("div");
    key.dataset.note = n;
    const index = whites.filter((w) => w < n).length;
    key.className = isBlack(n) ? "hf-key hf-black" : "hf-key hf-white";
    key.style.left = isBlack(n) ? `${(index - 0.3) * width}%` : `${index * width}%`;
    key.style.width = `${(isBlack(n) ? 0.6 : 1) * width}%`;
    if (n % 12 === 0) key.textContent = `C${n / 12 - 1}`;
    board.appendChild(key);
  }
}

function ensureAudio() {
  // Browsers allow an AudioContext only after a user gesture: made on the first key.
  if (!state.ctx) {
    state.ctx = new AudioContext();
    state.master = state.ctx.createGain();
    state.master.gain.value = 0.8;
    state.master.connect(state.ctx.destination);
    decode();
  }
  if (state.ctx.state === "suspended") state.ctx.resume();
}

async function decode() {
  if (!state.ctx || !state.meta) return;
  const meta = state.meta;
  const buffers = await Promise.all(meta.samples.map((s) => {
    const bytes = Uint8Array.from(atob(s.flac), (c) => c.charCodeAt(0));
    return state.ctx.decodeAudioData(bytes.buffer);
  }));
  if (meta === state.meta) state.buffers = buffers;  // a newer sound may have arrived meanwhile
}

function noteOn(note, velocity = 100) {
  ensureAudio();
  noteOff(note, 0.01);
  state.started += 1;
  element.querySelector(".hf-keyboard").dataset.notes = state.started;
  status.textContent = `${state.started} notes played`;
  board.querySelector(`[data-note="${note}"]`)?.classList.add("hf-down");
  const meta = state.meta;
  if (!meta || state.buffers.length !== meta.samples.length) return;  // still loading: counted, not heard
  const i = meta.samples.reduce((best, s, j) => (Math.abs(s.root - note) < Math.abs(meta.samples[best].root - note) ? j : best), 0);
  const sample = meta.samples[i];
  const source = state.ctx.createBufferSource();
  source.buffer = state.buffers[i];
  source.playbackRate.value = 2 ** ((note - sample.root) / 12);
  if (sample.loop) [source.loop, source.loopStart, source.loopEnd] = [true, sample.loop[0], sample.loop[1]];
  const gain = state.ctx.createGain();
  gain.gain.value = (velocity / 127) ** 2;
  source.connect(gain).connect(state.master);
  source.start();
  if (state.voices.size >= POLYPHONY) noteOff(state.voices.keys().next().value, 0.01);  // steal the oldest
  state.voices.set(note, { source, gain, looped: Boolean(sample.loop) });
}

function noteOff(note, release) {
  board.querySelector(`[data-note="${note}"]`)?.classList.remove("hf-down");
  const voice = state.voices.get(note);
  if (!voice) return;
  state.voices.delete(note);
  if (!voice.looped && release === undefined) return;  // a one-shot rings out
  const seconds = release ?? state.meta.release;
  const now = state.ctx.currentTime;
  voice.gain.gain.setValueAtTime(voice.gain.gain.value, now);
  voice.gain.gain.linearRampToValueAtTime(0, now + seconds);
  voice.source.stop(now + seconds + 0.01);
}

function shiftOctave(by) {
  state.octave = Math.min(5, Math.max(1, state.octave + by));
  drawKeys();
  element.querySelector(".hf-octave").textContent = `C${state.octave}`;
}

// On-screen keys: pointer events serve mouse, pen and touch alike; sliding across keys plays them.
const pointerNotes = new Set();
const pointerPlay = (e) => {
  const note = Number(e.target.dataset.note);
  if (Number.isNaN(note) || pointerNotes.has(note)) return;
  pointerNotes.add(note);
  noteOn(note);
};
const pointerStop = (note) => { if (pointerNotes.delete(note)) noteOff(note); };
board.addEventListener("pointerdown", (e) => {
  e.target.releasePointerCapture?.(e.pointerId);  // touch captures the first key; sliding must reach the others
  pointerPlay(e);
});
board.addEventListener("pointerover", (e) => { if (e.buttons) pointerPlay(e); });
board.addEventListener("pointerout", (e) => pointerStop(Number(e.target.dataset.note)));
window.addEventListener("pointerup", () => [...pointerNotes].forEach(pointerStop));

// Computer keyboard, unless the user is typing into a field; only the visible tab's keyboard listens.
const typing = (e) => ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName) || e.target.isContentEditable;
window.addEventListener("keydown", (e) => {
  if (typing(e) || e.repeat || e.ctrlKey || e.metaKey || element.offsetParent === null) return;
  if (e.key === "-" || e.key === "=") return shiftOctave(e.key === "-" ? -1 : 1);
  if (e.key.toLowerCase() in ROWS) noteOn(lowest() + ROWS[e.key.toLowerCase()]);
});
window.addEventListener("keyup", (e) => {
  if (e.key.toLowerCase() in ROWS) noteOff(lowest() + ROWS[e.key.toLowerCase()]);
});
element.querySelector(".hf-down-octave").addEventListener("click", () => shiftOctave(-1));
element.querySelector(".hf-up-octave").addEventListener("click", () => shiftOctave(1));

// Web MIDI where offered (Chrome, Edge, Firefox; not Safari); channel ignored, velocity kept.
const midiStatus = element.querySelector(".hf-midi");
if (navigator.requestMIDIAccess) {
  navigator.requestMIDIAccess().then((access) => {
    const listen = () => {
      for (const input of access.inputs.values()) {
        input.onmidimessage = ({ data: [status, note, velocity] }) => {
          const kind = status & 0xf0;
          if (kind === 0x90 && velocity > 0) noteOn(note, velocity);
          else if (kind === 0x80 || kind === 0x90) noteOff(note);
        };
      }
      midiStatus.textContent = `MIDI: ${access.inputs.size} input(s)`;
    };
    access.onstatechange = listen;
    listen();
  }, () => { midiStatus.textContent = "MIDI: not allowed"; });
} else {
  midiStatus.textContent = "MIDI: not offered by this browser";
}

function load() {
  // A new multisample from the server (after a slider is released, a new note is generated, ...).
  if (!props.value) return;
  state.meta = JSON.parse(props.value);
  state.buffers = [];
  element.querySelector(".hf-name").textContent = `${state.meta.name}: ${state.meta.samples.length} samples`;
  decode();
}

drawKeys();
load();
watch("value", load);
