"""HummingFace in the browser: Designer, Note Generator, Upsampler and Latent Explorer.

Layout and event wiring only; the work is in :mod:`hummingface.studio`. Run ``python app.py`` (or ``make app``).
Models load once at start, on the best device, from ``checkpoints/`` or the Hub repo in ``HUMMINGFACE_WEIGHTS``.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from types import SimpleNamespace

# No analytics and no telemetry unless the user says otherwise; no Hub calls at all unless the user names Hub
# weights in HUMMINGFACE_WEIGHTS (then they are downloaded, or read from the cache when the Hub is out of
# reach). Set before gradio and huggingface_hub are imported, because they read these once, at import.
OFFLINE = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
if not os.environ.get("HUMMINGFACE_WEIGHTS"):
    OFFLINE["HF_HUB_OFFLINE"] = "1"
for _name, _value in OFFLINE.items():
    os.environ.setdefault(_name, _value)

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

import hummingface  # noqa: E402
from hummingface.cli_args import MAX_SEED, number  # noqa: E402
from hummingface.constants import MAX_FILE_SIZE, SLIDER_RANGE, VIBRATO_MAX_CENTS  # noqa: E402
from hummingface.data.gm import FAMILIES  # noqa: E402
from hummingface.errors import UserError  # noqa: E402
from hummingface.instruments.export import FORMATS  # noqa: E402
from hummingface.instruments.source import Design  # noqa: E402
from hummingface.latent import MAX_SLIDERS  # noqa: E402
from hummingface.studio import PRESET_DIR, Studio, limit_malloc_arenas, note_name, sweep_every  # noqa: E402
from hummingface.vibrato import MEASURED_RATES_HZ, Vibrato  # noqa: E402

# Files in Gradio's cache (notes, pictures, uploads, upsampled WAVs) are deleted once they are this old; every
# minute the app sweeps it. Long enough to play and download a result, short enough that disk use stays flat.
CACHE_MINUTES = float(os.environ.get("HUMMINGFACE_CACHE_MINUTES", "10"))
WEB = Path(hummingface.__file__).resolve().parent / "web"  # the keyboard's HTML, CSS and JS


def _gpu(fn=None, duration: int = 60):
    """``spaces.GPU`` (a GPU for ``duration`` seconds per call) on a ZeroGPU Space; unchanged everywhere else.

    ``spaces`` leaves the function as it is unless ``SPACES_ZERO_GPU`` is set, so this is safe anywhere.
    """
    if fn is None:
        return functools.partial(_gpu, duration=duration)
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)


def _friendly(fn):
    """Turn a :class:`UserError` into a ``gr.Error`` with its one sentence; the app keeps serving."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as error:
            raise gr.Error(str(error)) from None

    return wrapper


def _numbers_only(slider: gr.Slider) -> gr.Slider:
    """``slider``, answering an API value that is not a number with a ``gr.Error`` (one sentence) instead of a
    processing traceback; Gradio already refuses out-of-range numbers that way. (Patched on the instance: a
    ``gr.Slider`` subclass would make Gradio write a ``.pyi`` stub beside this file.)"""
    preprocess = slider.preprocess

    def checked(payload):
        if isinstance(payload, bool) or not isinstance(payload, (int, float)):
            raise gr.Error(f"{slider.label or 'A slider'} must be a number, not {type(payload).__name__}.")
        return preprocess(payload)

    slider.preprocess = checked
    return slider


def _pitch_choices(low: int = 24, high: int = 96) -> list[tuple[str, int]]:
    return [(f"{note_name(p)} ({p})", p) for p in range(low, high + 1)]


def _presets() -> list[tuple[str, str]]:
    return [(path.stem.replace("_", " "), str(path)) for path in sorted(PRESET_DIR.glob("*.flac"))]


def _keyboard(elem_id: str) -> gr.HTML:
    """The playable keyboard (hummingface/web/keyboard.*); its value is the multisample as JSON (Studio.keyboard)."""
    return gr.HTML(
        "", html_template=(WEB / "keyboard.html").read_text(), css_template=(WEB / "keyboard.css").read_text(),
        js_on_load=(WEB / "keyboard.js").read_text(), elem_id=elem_id,
    )


def _vibrato_sliders(prefix: str) -> list[gr.Slider]:
    """Vibrato depth and rate (hummingface.vibrato): the pitch swing no note model keeps in its latent."""
    with gr.Row():
        depth = _numbers_only(gr.Slider(0, VIBRATO_MAX_CENTS, value=0.0, step=1, label="Vibrato depth (± cents)",
                                        elem_id=f"{prefix}-vibrato-depth"))
        rate = _numbers_only(gr.Slider(*MEASURED_RATES_HZ, value=5.5, step=0.1, label="Vibrato speed (Hz)",
                                       elem_id=f"{prefix}-vibrato-rate"))
    return [depth, rate]


def _vibrato_values(vibrato: Vibrato) -> list[float]:
    """A measured vibrato on the sliders: depth in whole cents, rate in tenths of a Hz."""
    return [round(vibrato.depth_cents), round(vibrato.rate_hz, 1)]


def _instrument_panel(prefix: str) -> SimpleNamespace:
    """"Export instrument" and "Render a MIDI file" accordions; elem_ids start with ``prefix``."""
    with gr.Accordion("Export instrument", open=False):
        with gr.Row():
            fmt = gr.Dropdown(list(FORMATS), value="sfz", label="Format", elem_id=f"{prefix}-format")
            low = gr.Dropdown(_pitch_choices(), value=24, label="Lowest pitch")
            high = gr.Dropdown(_pitch_choices(), value=96, label="Highest pitch")
            step = gr.Slider(1, 12, value=3, step=1, label="Step (semitones)")
            name = gr.Textbox("", label="Name", placeholder="from the design")
        export = gr.Button("Export instrument (.zip)", elem_id=f"{prefix}-export")
        zipped = gr.File(label="Instrument", elem_id=f"{prefix}-export-file")
    with gr.Accordion("Render a MIDI file", open=False):
        midi = gr.File(label="MIDI file", file_types=[".mid", ".midi"], type="filepath", elem_id=f"{prefix}-midi")
        render = gr.Button("Render with this sound", elem_id=f"{prefix}-render")
        rendered = gr.Audio(label="Rendered (44.1 kHz stereo)", buttons=["download"], elem_id=f"{prefix}-rendered")
        picture = gr.Image(label="Spectrogram", interactive=False, format="jpeg")
        wav = gr.File(label="Download WAV")
        note = gr.Textbox(label="Result", interactive=False)
    return SimpleNamespace(fmt=fmt, low=low, high=high, step=step, name=name, export=export, zipped=zipped,
                           midi=midi, render=render, outputs=[rendered, wav, picture, note])


def build_app(studio: Studio) -> gr.Blocks:
    """The four tabs wired to ``studio``'s methods."""
    timbre_names = list(studio.timbres)
    first = timbre_names[0]
    generator_names = list(studio.generators)
    presets = _presets()

    cache_seconds = max(60, int(CACHE_MINUTES * 60))  # at least a minute: Gradio looks that often
    with gr.Blocks(title="HummingFace", delete_cache=(60, cache_seconds)) as demo:
        gr.Markdown("# HummingFace\nDesign instrument notes with latent sliders, generate notes, upsample 8 kHz audio.")
        with gr.Tabs(selected="designer") as tabs:
            # -- Designer --------------------------------------------------------------------------------
            with gr.Tab("Designer", id="designer"):
                base = gr.State(None)  # the latent the sliders move away from (None: the mean)
                with gr.Row():
                    with gr.Column(scale=2):
                        with gr.Row():
                            design_model = gr.Dropdown(timbre_names, value=first, label="Model", elem_id="design-model")
                            design_pitch = gr.Dropdown(
                                _pitch_choices(), value=60, label="Pitch", elem_id="design-pitch",
                                info="cvae plays any pitch; the other models hold the pitch in the sliders",
                            )
                        count = studio.n_sliders(first)
                        names = studio.slider_labels(first)
                        sliders = [
                            _numbers_only(gr.Slider(-SLIDER_RANGE, SLIDER_RANGE, value=0.0, step=0.05,
                                                    label=names[i] if i < count else f"Direction {i + 1}",
                                                    visible=i < count, elem_id=f"slider-{i}"))
                            for i in range(MAX_SLIDERS)
                        ]
                        design_vibrato = _vibrato_sliders("design")
                        with gr.Row():
                            seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                            randomise = gr.Button("Randomise", elem_id="randomise")
                            reset = gr.Button("Reset", elem_id="reset")
                        with gr.Row():
                            mutate = gr.Button("Mutate", elem_id="mutate")
                            undo = gr.Button("Undo", elem_id="undo")
                        history = gr.State([])  # (base, slider values) before each mutation, for Undo
                    with gr.Column(scale=3):
                        design_audio = gr.Audio(label="Note", buttons=["download"], elem_id="design-audio")
                        design_picture = gr.Image(label="Spectrogram", interactive=False, elem_id="design-picture",
                                                  format="jpeg")  # 1 ms to encode; webp takes 8
                        with gr.Accordion("Start from a sound", open=False):
                            sound = gr.Audio(label="Upload a note", type="filepath", sources=["upload"])
                            preset = gr.Dropdown(presets, value=None, label="…or pick a preset")
                            use_sound = gr.Button("Use this sound")
                        with gr.Accordion("Morph A ↔ B", open=False):
                            with gr.Row():
                                sound_a = gr.Dropdown(presets, label="A", value=presets[0][1] if presets else None)
                                sound_b = gr.Dropdown(presets, label="B", value=presets[-1][1] if presets else None)
                            mix = _numbers_only(gr.Slider(0, 1, value=0.5, step=0.05, label="Mix (0 = A, 1 = B)"))
                            morph = gr.Button("Morph")

                design_keyboard = _keyboard("design-keyboard")
                design_panel = _instrument_panel("design")

            # -- Note Generator --------------------------------------------------------------------------
            with gr.Tab("Note Generator", id="generator"):
                if not generator_names:
                    gr.Markdown("No note generator checkpoint (gan, cdecoder) was found.")
                with gr.Row():
                    with gr.Column():
                        gen_model = gr.Dropdown(generator_names, value=generator_names[0] if generator_names else None,
                                                label="Model", elem_id="gen-model")
                        gen_pitch = gr.Dropdown(_pitch_choices(), value=60, label="Pitch")
                        gen_family = gr.Dropdown(FAMILIES, value="keyboard", label="Family")
                        gen_velocity = _numbers_only(gr.Slider(1, 127, value=100, step=1, label="Velocity"))
                        gen_seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                        gen_vibrato = _vibrato_sliders("gen")
                        gen_play = gr.Radio(["note", "scale", "chord"], value="note", label="Play")
                        with gr.Row():
                            generate = gr.Button("Generate", variant="primary", elem_id="generate")
                            surprise = gr.Button("Surprise me")
                    with gr.Column():
                        gen_audio = gr.Audio(label="Note", buttons=["download"], elem_id="gen-audio")
                        gen_picture = gr.Image(label="Spectrogram", interactive=False, format="jpeg")

                gen_keyboard = _keyboard("gen-keyboard")
                gen_panel = _instrument_panel("gen")

            # -- Upsampler -------------------------------------------------------------------------------
            with gr.Tab("Upsampler", id="upsampler"):
                gr.Markdown(
                    "Upload a muffled clip (WAV, FLAC, OGG or MP3, up to 10 minutes). Anything above 8 kHz is first "
                    "brought down to 8 kHz; the band below 3.8 kHz passes through and the model adds the rest."
                )
                modes = (["model"] if studio.upsampler is not None else []) + ["sbr", "sinc"]
                with gr.Row():
                    with gr.Column():
                        upload = gr.Audio(label="Original", type="filepath", sources=["upload"], elem_id="upload")
                        upload_info = gr.Textbox(label="Input", interactive=False, elem_id="upload-info")
                        mode = gr.Radio(modes, value=modes[0], label="Mode (sbr and sinc are the baselines)")
                        run_upsample = gr.Button("Upsample to 44.1 kHz", variant="primary", elem_id="run-upsample")
                    with gr.Column():
                        upsampled = gr.Audio(label="Upsampled (44.1 kHz)", buttons=["download"], elem_id="upsampled")
                        upsampled_file = gr.File(label="Download 44.1 kHz WAV")
                        upsample_note = gr.Textbox(label="Result", interactive=False)
                upsample_picture = gr.Image(label="Spectrogram: before | after", interactive=False)

            # -- Latent Explorer -------------------------------------------------------------------------
            with gr.Tab("Latent Explorer", id="explorer"):
                components = studio.axes_choices(first)
                with gr.Row():
                    explore_model = gr.Dropdown(timbre_names, value=first, label="Model")
                    x_axis = gr.Dropdown(components, value=1, label="Horizontal axis: principal component")
                    y_axis = gr.Dropdown(components, value=2, label="Vertical axis: principal component")
                with gr.Row():
                    with gr.Column(scale=3):
                        the_map = gr.Image(studio.explore_map(first)[0], label="Click a point to hear it",
                                           interactive=False, elem_id="map")
                    with gr.Column(scale=2):
                        labels = gr.Textbox(label="Note", interactive=False, elem_id="explore-labels")
                        original = gr.Audio(label="Original", elem_id="explore-original")
                        reconstruction = gr.Audio(label="Reconstruction", elem_id="explore-reconstruction")
                        send = gr.Button("Send to Designer", elem_id="send")
                        with gr.Accordion("Pick by pixel", open=False):
                            x_pixel = gr.Number(320, label="x (pixels from the left)")
                            y_pixel = gr.Number(240, label="y (pixels from the top)")
                            pick = gr.Button("Play the nearest note")
                fidelity = gr.Image(studio.fidelity(first), label="Fidelity: variance kept by the first k directions",
                                    interactive=False)
                explored = gr.State(None)  # (model, latent, pitch, vibrato depth and rate) of the last clicked note

        # -- wiring: Designer ------------------------------------------------------------------------------
        # The vibrato sliders come last, so an API call that gives only the timbre sliders plays none.
        design_inputs = [design_model, design_pitch, base, *sliders, *design_vibrato]
        design_outputs = [design_audio, design_picture]

        @_gpu
        @_friendly
        def design(model, pitch, base_latent, *rest):
            *values, depth, rate = rest
            result = studio.design(model, values, pitch, base_latent, Vibrato(depth, rate))
            return result.audio, result.picture

        def jump(model, latent):
            """Sliders (and their visibility) for a latent; the latent becomes the Designer's base."""
            values = studio.slider_values(model, latent)
            count, names = studio.n_sliders(model), studio.slider_labels(model)
            updates = [gr.Slider(value=values[i] if i < count else 0.0, visible=i < count,
                                 label=names[i] if i < count else None) for i in range(MAX_SLIDERS)]
            return [[float(v) for v in latent], *updates]

        slider_events = dict(fn=design, inputs=design_inputs, outputs=design_outputs, concurrency_id="design",
                             concurrency_limit=2)
        gr.on([s.release for s in sliders + design_vibrato] + [design_pitch.input], api_name="design",
              **slider_events)
        # Live while dragging: only the newest position is decoded once the last call is done.
        gr.on([s.input for s in sliders + design_vibrato], trigger_mode="always_last", show_progress="hidden",
              api_visibility="private", **slider_events)

        def reset_sliders(model):
            count, names = studio.n_sliders(model), studio.slider_labels(model)
            return [None, *[gr.Slider(value=0.0, visible=i < count, label=names[i] if i < count else None)
                            for i in range(MAX_SLIDERS)]]

        for trigger in (reset.click, design_model.input):
            trigger(reset_sliders, design_model, [base, *sliders], api_visibility="private").then(
                api_visibility="private", **slider_events)

        @_friendly
        def do_randomise(model, seed_value):
            return jump(model, studio.randomise(model, seed_value or 0))

        randomise.click(do_randomise, [design_model, seed], [base, *sliders], api_visibility="private").then(
            api_visibility="private", **slider_events)

        @_gpu
        @_friendly
        def use(model, upload_path, preset_path):
            path = upload_path or preset_path
            if not path:
                raise UserError("Upload a sound or pick a preset first.")
            latent, pitch, vibrato = studio.start_from(model, path)
            return [pitch, *jump(model, latent), *_vibrato_values(vibrato)]

        use_sound.click(use, [design_model, sound, preset], [design_pitch, base, *sliders, *design_vibrato],
                        api_visibility="private").then(api_visibility="private", **slider_events)

        @_gpu
        @_friendly
        def do_morph(model, a, b, amount):
            if not a or not b:
                raise UserError("Pick two sounds to morph between.")
            latent, pitch, vibrato = studio.morph(model, a, b, amount)
            return [pitch, *jump(model, latent), *_vibrato_values(vibrato)]

        morph.click(do_morph, [design_model, sound_a, sound_b, mix], [design_pitch, base, *sliders, *design_vibrato],
                    api_visibility="private").then(api_visibility="private", **slider_events)
        demo.load(api_visibility="private", **slider_events)

        # -- wiring: Note Generator ------------------------------------------------------------------------
        @_gpu
        @_friendly
        def generate_note(model, pitch, family, velocity, seed_value, play, depth=0.0, rate=5.5):
            if not model:
                raise UserError("No note generator is loaded.")
            return studio.generate_note(model, pitch, family, velocity, seed_value or 0, play, Vibrato(depth, rate))

        gen_inputs = [gen_model, gen_pitch, gen_family, gen_velocity, gen_seed, gen_play, *gen_vibrato]
        generate.click(generate_note, gen_inputs, [gen_audio, gen_picture], api_name="generate_note",
                       concurrency_id="generate", concurrency_limit=2)

        @_friendly
        def do_surprise(model, seed_value):
            pitch, family, velocity = studio.surprise(model, (seed_value or 0) + 1)
            next_seed = int(seed_value or 0) + 1
            return pitch, family, velocity, next_seed, "note"

        surprise.click(do_surprise, [gen_model, gen_seed], [gen_pitch, gen_family, gen_velocity, gen_seed, gen_play],
                       api_visibility="private").then(
            generate_note, gen_inputs, [gen_audio, gen_picture], api_visibility="private",
            concurrency_id="generate", concurrency_limit=2)

        # -- wiring: Upsampler -----------------------------------------------------------------------------
        @_friendly
        def describe(path):
            return studio.describe_upload(path) if path else ""

        upload.change(describe, upload, upload_info, api_visibility="private")

        @_gpu(duration=300)  # a 10-minute file takes minutes on a CPU, well under one on a GPU
        @_friendly
        def upsample(path, chosen_mode="model", progress=gr.Progress()):  # noqa: B008 (Gradio injects it)
            if not path:
                raise UserError("Upload a clip first.")
            if chosen_mode not in modes:
                chosen_mode = modes[0]
            # Written straight into Gradio's cache, so it is served without a copy; the studio deletes it later.
            target, picture, note = studio.upsample(path, chosen_mode, Path(demo.GRADIO_CACHE) / "upsampled",
                                                    progress=lambda f: progress(f))
            return str(target), str(target), picture, note

        run_upsample.click(upsample, [upload, mode], [upsampled, upsampled_file, upsample_picture, upsample_note],
                           api_name="upsample", concurrency_id="upsample", concurrency_limit=1)

        # -- wiring: Latent Explorer -----------------------------------------------------------------------
        @_gpu
        @_friendly
        def explore(model, x_component, y_component, x, y):
            found = studio.explore(model, x_component, y_component, (x, y))
            return found.picture, found.labels, found.original, found.reconstruction, (
                model, found.latent.tolist(), found.pitch, _vibrato_values(found.vibrato))

        explore_outputs = [the_map, labels, original, reconstruction, explored]
        explore_inputs = [explore_model, x_axis, y_axis, x_pixel, y_pixel]
        pick.click(explore, explore_inputs, explore_outputs, api_name="explore", concurrency_id="explore")

        def clicked(evt: gr.SelectData):
            return evt.index[0], evt.index[1]

        the_map.select(clicked, None, [x_pixel, y_pixel], api_visibility="private").then(
            explore, explore_inputs, explore_outputs, api_visibility="private", concurrency_id="explore")

        @_friendly
        def redraw(model, x_component, y_component):
            choices = studio.axes_choices(model)
            x_component = x_component if x_component in choices else 1
            y_component = y_component if y_component in choices else 2
            picture, _ = studio.explore_map(model, int(x_component), int(y_component))
            return (picture, studio.fidelity(model), gr.Dropdown(choices=choices, value=x_component),
                    gr.Dropdown(choices=choices, value=y_component))

        for trigger in (explore_model.input, x_axis.input, y_axis.input):
            trigger(redraw, [explore_model, x_axis, y_axis], [the_map, fidelity, x_axis, y_axis],
                    api_visibility="private")

        @_friendly
        def send_to_designer(chosen):
            if chosen is None:
                raise UserError("Click a note on the map first.")
            model, latent, pitch, vibrato = chosen
            return [gr.Tabs(selected="designer"), model, pitch, *jump(model, latent), *vibrato]

        send.click(send_to_designer, explored, [tabs, design_model, design_pitch, base, *sliders, *design_vibrato],
                   api_visibility="private").then(api_visibility="private", **slider_events)
        # -- wiring: Instruments (keyboards, export, MIDI render, mutate/undo) ------------------------------
        def designed(model, base_latent, values) -> Design:
            """The Designer's design from its inputs: the timbre sliders, then the vibrato's depth and rate."""
            *values, depth, rate = values
            count = studio.n_sliders(model)
            sliders = tuple(number(v, f"Slider {i + 1}") for i, v in enumerate(values[:count]))
            return Design(model=model, sliders=sliders, latent=tuple(base_latent) if base_latent is not None else None,
                          vibrato=Vibrato(depth, rate))

        def generated(model, family, seed_value, depth, rate) -> Design:
            if not model:
                raise UserError("No note generator is loaded.")
            seed_value = number(seed_value or 0, "The seed", 0, MAX_SEED, integer=True)
            return Design(model=model, family=family, seed=seed_value, vibrato=Vibrato(depth, rate))

        @_gpu
        @_friendly
        def design_keys(model, base_latent, *values):
            return studio.keyboard(designed(model, base_latent, values))

        keys_inputs = [design_model, base, *sliders, *design_vibrato]
        keys_events = dict(fn=design_keys, inputs=keys_inputs, outputs=design_keyboard, api_visibility="private",
                           concurrency_id="keyboard", show_progress="hidden", trigger_mode="always_last")
        # After a release (not on every drag), and after anything that moves the sliders and the base.
        gr.on([s.release for s in sliders + design_vibrato] + [base.change, design_model.input, demo.load],
              **keys_events)

        @_gpu
        @_friendly
        def mean_keys(model):  # Reset: the model's mean sound (the sliders are being zeroed meanwhile)
            return studio.keyboard(Design(model=model))

        reset.click(mean_keys, design_model, design_keyboard, api_visibility="private", concurrency_id="keyboard",
                    show_progress="hidden")

        @_gpu
        @_friendly
        def gen_keys(model, family, seed_value, velocity, depth, rate):
            if not model:  # no note generator loaded: an empty keyboard, no error on page load
                return ""
            return studio.keyboard(generated(model, family, seed_value, depth, rate), velocity=int(velocity))

        gr.on([gen_audio.change, demo.load], gen_keys, [gen_model, gen_family, gen_seed, gen_velocity, *gen_vibrato],
              gen_keyboard, api_visibility="private", concurrency_id="keyboard", show_progress="hidden")

        @_gpu
        @_friendly
        def export_design(model, base_latent, *rest):
            *values, fmt, low, high, step, name, depth, rate = rest
            design = designed(model, base_latent, [*values, depth, rate])
            return str(studio.export_instrument(design, fmt, (low, high), step, name or None,
                                                Path(demo.GRADIO_CACHE) / "instruments"))

        @_gpu
        @_friendly
        def export_note(model, family, seed_value, fmt, low, high, step, name, depth=0.0, rate=5.5):
            return str(studio.export_instrument(generated(model, family, seed_value, depth, rate), fmt, (low, high),
                                                step, name or None, Path(demo.GRADIO_CACHE) / "instruments"))

        settings = [design_panel.fmt, design_panel.low, design_panel.high, design_panel.step, design_panel.name]
        # The vibrato comes last in every endpoint's inputs, so a call written without it plays none.
        design_panel.export.click(export_design, [design_model, base, *sliders, *settings, *design_vibrato],
                                  design_panel.zipped, api_name="export_instrument", concurrency_id="export",
                                  concurrency_limit=1)
        settings = [gen_panel.fmt, gen_panel.low, gen_panel.high, gen_panel.step, gen_panel.name]
        gen_panel.export.click(export_note, [gen_model, gen_family, gen_seed, *settings, *gen_vibrato],
                               gen_panel.zipped, api_name="export_note_instrument", concurrency_id="export",
                               concurrency_limit=1)

        def rendered(design, path):
            if not path:
                raise UserError("Upload a MIDI file (.mid) first.")
            audio, target, picture, note = studio.render_midi(design, path, Path(demo.GRADIO_CACHE) / "rendered")
            return audio, str(target), picture, note

        @_gpu
        @_friendly
        def render_design(model, base_latent, *rest):
            *values, path, depth, rate = rest
            return rendered(designed(model, base_latent, [*values, depth, rate]), path)

        @_gpu
        @_friendly
        def render_note(model, family, seed_value, path, depth=0.0, rate=5.5):
            return rendered(generated(model, family, seed_value, depth, rate), path)

        design_panel.render.click(render_design, [design_model, base, *sliders, design_panel.midi, *design_vibrato],
                                  design_panel.outputs, api_name="render_midi", concurrency_id="render",
                                  concurrency_limit=1)
        gen_panel.render.click(render_note, [gen_model, gen_family, gen_seed, gen_panel.midi, *gen_vibrato],
                               gen_panel.outputs, api_name="render_note_midi", concurrency_id="render",
                               concurrency_limit=1)

        @_friendly
        def do_mutate(model, base_latent, past, *values):
            count = studio.n_sliders(model)
            seed_value = int(np.random.default_rng().integers(2**31))  # a fresh step on every click
            moved = studio.mutate(model, values, seed_value)
            past = [*past, (base_latent, [float(v) for v in values[:count]])][-20:]
            return [past, *[gr.Slider(value=moved[i]) if i < count else gr.Slider() for i in range(MAX_SLIDERS)]]

        mutate.click(do_mutate, [design_model, base, history, *sliders], [history, *sliders],
                     api_visibility="private").then(api_visibility="private", **slider_events).then(**keys_events)

        def do_undo(model, past):
            if not past:
                raise gr.Error("Nothing to undo yet: Mutate first.")
            *past, (base_latent, values) = past
            count = studio.n_sliders(model)
            return [past, base_latent, *[gr.Slider(value=values[i]) if i < min(count, len(values)) else gr.Slider()
                                         for i in range(MAX_SLIDERS)]]

        undo.click(do_undo, [design_model, history], [history, base, *sliders], api_visibility="private").then(
            api_visibility="private", **slider_events).then(**keys_events)
    return demo


def main() -> None:
    # Before any worker thread: with glibc's default of an arena per thread (up to 8 per core), resident memory
    # climbed by ~1 GB in a 20-minute soak; with two it stays level (README, "Load and soak").
    limit_malloc_arenas(2)
    try:
        studio = Studio.load(os.environ.get("HUMMINGFACE_WEIGHTS"), os.environ.get("HUMMINGFACE_DEVICE"),
                             keep_seconds=max(60.0, CACHE_MINUTES * 60))
    except UserError as error:  # no weights: one sentence, not a traceback
        print(f"HummingFace cannot start: {error}", file=sys.stderr)
        sys.exit(2)
    demo = build_app(studio)
    # Gradio's own pass (delete_cache) stops for good under load; this one sweeps the whole cache folder.
    sweep_every(demo.GRADIO_CACHE, studio.keep_seconds, every_seconds=60, tracked=demo.temp_file_sets)
    demo.queue(default_concurrency_limit=2).launch(max_file_size=MAX_FILE_SIZE)


if __name__ == "__main__":
    main()
