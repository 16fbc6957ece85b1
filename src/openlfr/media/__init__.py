"""Reading media safely: images now, video streams later."""
