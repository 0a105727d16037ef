// The server's JSON, as the UI reads it (docs/architecture.md and ../shared/DESIGN.md).

export type JobState = 'queued' | 'active' | 'succeeded' | 'failed' | 'cancelled';
export const JOB_STATES: JobState[] = ['queued', 'active', 'succeeded', 'failed', 'cancelled'];

export interface Job {
  id: string;
  type: string;
  queue: string;
  state: JobState;
  priority: number;
  payload: unknown;
  result: unknown;
  error: unknown;
  progress: unknown;
  attempts: number;
  max_attempts: number;
  timeout_s: number;
  run_at: string;
  cancel_requested: boolean;
  idempotency_key: string | null;
  topics: string[];
  lease_owner: string | null;
  lease_expires_at: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface JobPage {
  jobs: Job[];
  next_cursor: string | null;
}

export interface StoredEvent {
  topic: string;
  offset: number;
  type: string;
  data: unknown;
  time: string;
  first_offset?: number;
}

export interface Snapshot {
  job: Job;
  attempt: number;
  parts: Record<string, string>;
  complete: boolean;
  topic: string;
  offset: number;
  // The current attempt's events other than deltas, when the server sends them.
  events?: StoredEvent[];
}

export type StateCounts = Record<JobState, number>;

export interface Stats {
  jobs: StateCounts;
  running_here: number;
  queues?: Record<string, StateCounts>;
  types?: Record<string, StateCounts>;
  throughput?: {
    bucket_s: number;
    buckets: { t: number; succeeded: number; failed: number; cancelled: number }[];
  };
}

export interface CouncilSettings {
  members?: string[];
  chairman?: string;
  chairman_fallback?: string;
  title_model?: string;
  self_ranking?: boolean;
}

export interface ServerConfig {
  council: CouncilSettings;
  providers: { name: string; simulated: boolean; has_key: boolean; base_url?: string }[];
  default_provider?: string;
  simulated: boolean;
  version?: string;
}

export type ProcessingState = 'idle' | 'active' | 'error';

export interface ConversationSummary {
  id: string;
  title: string;
  created_at: string;
  processing_state: ProcessingState;
  council: CouncilSettings | null;
  message_count: number;
  last_job_id: string | null;
  topic: string;
}

export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  cost?: number;
}

export interface Stage1Result {
  model: string;
  response: string;
  usage?: Usage;
}

export interface Stage2Result {
  model: string;
  ranking: string;
  parsed_ranking?: string[];
  usage?: Usage;
}

export interface Stage3Result {
  model: string;
  response: string;
  error?: string;
  usage?: Usage;
}

export interface AggregateRank {
  model: string;
  average_rank: number;
  rankings_count: number;
}

export interface TurnMetadata {
  label_to_model?: Record<string, string>;
  aggregate_rankings?: AggregateRank[];
  errors?: { model: string; stage?: string; error?: string; message?: string }[];
  usage?: Usage;
  simulated?: boolean;
  title?: string;
  error?: string | { message?: string };
}

export interface Message {
  id: string;
  seq: number;
  role: 'user' | 'assistant';
  content: string;
  job_id: string | null;
  created_at: string;
  stage1?: Stage1Result[] | null;
  stage2?: Stage2Result[] | null;
  stage3?: Stage3Result | null;
  metadata?: TurnMetadata | null;
  error?: unknown;
}

export interface Conversation extends ConversationSummary {
  messages: Message[];
}

export interface TurnStarted {
  message: Message;
  job: Job;
  job_id: string;
  topic: string;
}
