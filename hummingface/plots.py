"""Pictures the app shows, as RGB ``uint8`` arrays ``(height, width, 3)``: spectrograms, the Explorer map, fidelity.

Spectrograms are coloured straight from a dB array through a matplotlib colormap (no figure: a few
milliseconds, so the Designer's picture keeps up with its sliders). The Explorer map is a real figure with
axes; :class:`MapView` remembers where its axes sit in the image so that a click's pixel maps back to data.

Figures are plain ``matplotlib.figure.Figure`` objects drawn on their own Agg canvas, never pyplot: pyplot
keeps global state (the current figure, a registry of open figures) that request threads would share.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from hummingface.data.gm import FAMILIES

MAP_SIZE = (640, 480)  # Explorer map, pixels (width, height)


def spectrogram_db(audio: np.ndarray, sample_rate: int, n_fft: int = 1024, hop: int | None = None) -> np.ndarray:
    """Mono audio ``(samples,)`` -> dB power ``(n_fft // 2 + 1, frames)``, 0 dB at the clip's peak.

    ``hop`` defaults to ``n_fft // 4`` but grows for long clips so the picture stays under ~2000 frames.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if hop is None:
        hop = max(n_fft // 4, -(-len(audio) // 2000))
    if len(audio) < n_fft:
        audio = np.pad(audio, (0, n_fft - len(audio)))
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=-1)).T ** 2
    db = 10 * np.log10(power + 1e-12)
    return db - db.max()


def spectrogram_image(
    audio: np.ndarray, sample_rate: int, height: int = 256, max_hz: float | None = None, floor_db: float = -90.0,
    width: int | None = None,
) -> np.ndarray:
    """Mono or ``(channels, samples)`` audio -> spectrogram picture ``(height, frames, 3)``, low notes at the bottom.

    Args:
        max_hz: top of the picture (default: Nyquist); set it to compare clips at different rates on one axis.
        floor_db: dB below the peak drawn black.
        width: frames across (default: a quarter-window hop); give two clips the same to compare them.
    """
    from matplotlib import colormaps

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=0)
    n_fft = 2048 if sample_rate > 24000 else 1024
    hop = max(1, -(-len(audio) // width)) if width else None
    db = spectrogram_db(audio, sample_rate, n_fft, hop)
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    top = max_hz or sample_rate / 2
    rows = np.linspace(0, top, height)
    # Nearest bin per picture row; rows above this clip's Nyquist stay at the floor.
    index = np.clip(np.searchsorted(freqs, rows), 0, len(freqs) - 1)
    picture = np.where((rows <= sample_rate / 2)[:, None], db[index], floor_db)
    level = np.clip(1 - picture / floor_db, 0, 1)[::-1]
    return (colormaps["magma"](level)[..., :3] * 255).astype(np.uint8)


def side_by_side(pictures: Sequence[np.ndarray], gap: int = 6) -> np.ndarray:
    """Pictures of one height, left to right, with a white gap: ``(H, sum(W) + gaps, 3)``."""
    height = max(p.shape[0] for p in pictures)
    parts = []
    for i, picture in enumerate(pictures):
        if i:
            parts.append(np.full((height, gap, 3), 255, dtype=np.uint8))
        parts.append(picture)
    return np.concatenate(parts, axis=1)


@dataclasses.dataclass(frozen=True)
class MapView:
    """Where the Explorer map's axes are: data limits and the axes' box in image pixels (origin top-left)."""

    x_limits: tuple[float, float]
    y_limits: tuple[float, float]
    left: float
    top: float
    width: float
    height: float

    def to_data(self, x_pixel: float, y_pixel: float) -> tuple[float, float]:
        """Image pixel (as ``gr.SelectData.index`` gives it) -> data coordinates."""
        fx = (x_pixel - self.left) / self.width
        fy = (y_pixel - self.top) / self.height
        x = self.x_limits[0] + fx * (self.x_limits[1] - self.x_limits[0])
        y = self.y_limits[1] - fy * (self.y_limits[1] - self.y_limits[0])
        return float(x), float(y)

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        """Data coordinates -> image pixel (inverse of :meth:`to_data`)."""
        fx = (x - self.x_limits[0]) / (self.x_limits[1] - self.x_limits[0])
        fy = (self.y_limits[1] - y) / (self.y_limits[1] - self.y_limits[0])
        return float(self.left + fx * self.width), float(self.top + fy * self.height)


def latent_map(
    points: np.ndarray, family: np.ndarray, x_label: str, y_label: str, title: str
) -> tuple[np.ndarray, MapView]:
    """Scatter of ``points`` ``(N, 2)`` coloured by NSynth family ``(N,)`` -> (picture ``(480, 640, 3)``, view)."""
    from matplotlib import colormaps

    width, height = MAP_SIZE
    figure = _figure(width / 100, height / 100)
    axes = figure.add_axes((0.09, 0.1, 0.68, 0.82))
    colours = [*colormaps["tab10"].colors, "black"]  # 11 families, 11 distinct colours
    for index, name in enumerate(FAMILIES):
        chosen = family == index
        if chosen.any():
            axes.scatter(points[chosen, 0], points[chosen, 1], s=7, color=colours[index], label=name, linewidths=0)
    axes.set(xlabel=x_label, ylabel=y_label, title=title)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, markerscale=2, frameon=False)
    figure.canvas.draw()
    picture = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    box = axes.get_window_extent()  # display pixels, origin bottom-left
    view = MapView(axes.get_xlim(), axes.get_ylim(), box.x0, height - box.y1, box.width, box.height)
    return picture, view


def ring(picture: np.ndarray, centre: tuple[float, float], radius: float = 8.0, width: float = 2.0) -> np.ndarray:
    """A copy of ``picture`` ``(H, W, 3)`` with a black ring around pixel ``centre`` (x, y): the clicked point."""
    rows, columns = np.ogrid[: picture.shape[0], : picture.shape[1]]
    distance = np.hypot(columns - centre[0], rows - centre[1])
    marked = picture.copy()
    marked[np.abs(distance - radius) <= width / 2] = 0
    return marked


def fidelity_plot(fidelity: np.ndarray, n_sliders: int, title: str) -> np.ndarray:
    """Cumulative explained variance against the number of PCA directions -> picture ``(300, 480, 3)``."""
    figure = _figure(4.8, 3.0, layout="constrained")
    axes = figure.add_subplot()
    count = np.arange(1, len(fidelity) + 1)
    axes.plot(count, fidelity, lw=1.5)
    axes.axhline(0.95, color="grey", ls="--", lw=1)
    axes.axvline(n_sliders, color="tab:red", lw=1, label=f"{n_sliders} sliders: {fidelity[n_sliders - 1]:.1%}")
    axes.set(xlabel="PCA directions", ylabel="explained variance", ylim=(0, 1.01), title=title)
    axes.legend(loc="lower right")
    figure.canvas.draw()
    picture = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    return picture


def _figure(width_inches: float, height_inches: float, **kwargs):
    """A figure on its own Agg canvas at 100 dpi (no pyplot): freed with its last reference, safe per thread."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_inches, height_inches), dpi=100, **kwargs)
    FigureCanvasAgg(figure)
    return figure
