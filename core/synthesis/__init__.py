"""Synthesis from the map: samplers that turn a map coordinate u into latents to decode.

One interface (:class:`core.synthesis.base.Sampler`); one file per sampler.
"""
