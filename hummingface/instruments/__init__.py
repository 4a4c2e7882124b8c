"""Playable instruments from designed sounds.

A design (a timbre model with slider values, or a note generator with family and seed) is rendered as a
multisample -- a note every few semitones, each at its true pitch, trimmed, loudness-matched and, for sounds
that sustain, looped -- and written for real samplers (SFZ, Decent Sampler, SoundFont 2, a WAV folder) or
played from a MIDI file.

One file per concept:

- :mod:`.source`: a design -> notes at any pitch and velocity (``NoteSource``).
- :mod:`.loop`: sustain loops (whole periods, best correlation, zero crossings, crossfade).
- :mod:`.multisample`: the sampled set (``Multisample``) and how it is made.
- :mod:`.wavfile`: 16-bit WAV with a ``smpl`` loop chunk.
- :mod:`.sfz`, :mod:`.dspreset`, :mod:`.sf2`, :mod:`.export`: the instrument formats.
- :mod:`.midi`, :mod:`.render`: MIDI files played with a multisample.
- :mod:`.descriptors`, :mod:`.names`: what each slider measurably does to the sound.
"""
