// D11: every Policy field is accepted on create, with these defaults when omitted.
export const POLICY_DEFAULTS = {
  max_activations: 1,
  max_floating_users: 0,
  max_container_instances: 0,
  floating_timeout_minutes: 30,
  grace_period_days: 0,
  validation_interval_minutes: 1440,
  require_heartbeat: false,
  allow_offline_activation: false,
  offline_grace_days: 7,
  allow_vm: true,
  allow_container: true,
  max_transfers: 0,
  duration_days: null as number | null,
  // D12: deactivations are unlimited unless a policy sets max_deactivations.
  max_deactivations: 0,
  deactivation_window_days: 30,
};
