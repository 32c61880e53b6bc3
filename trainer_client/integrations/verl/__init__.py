"""verl: the curriculum in verl's own training loop, by one of two routes.

- verl 0.5-0.7: :mod:`.sampler`, a ``data.sampler`` class (verl's experimental
  ``AbstractCurriculumSampler``) that draws each step's prompts by the plan and reports in
  ``update(batch)``.
- verl 0.9+ (the v1 trainer; verl 0.8 removed the sampler hook): :mod:`.trainer`, a
  ``PPOTrainerSync`` subclass that composes each step's batch by the plan and reports after
  the advantage computation, launched by ``python -m trainer_client.integrations.verl.main_ppo``.

Both read the run's settings from a ``curriculum`` block of verl's config and the
environment (:mod:`.settings`). Importing this package imports nothing of verl.
"""
