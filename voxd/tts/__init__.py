"""Speech engines. Import concrete engines through :func:`voxd.tts.registry.load_engine`."""
