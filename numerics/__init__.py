"""Monte-Carlo diffusion sampling in torch: schedules, samplers and denoisers."""
