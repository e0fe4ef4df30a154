%%% The state of a port owner (caravan_port), shared with the module that
%%% reads the program's output for it (caravan_port_reply).
-record(state, {name :: atom(),
                program :: file:filename(),
                port :: port() | undefined,
                os_pid :: non_neg_integer() | undefined,
                started_at :: integer() | undefined,
                answered = false :: boolean(),
                next_id = 1 :: pos_integer(),
                %% A call in flight: its caller, its timer, and the monitor
                %% of the caller, whose exit cancels the request; monitors
                %% maps each such monitor back to the id.
                pending = #{} :: #{pos_integer() => {gen_server:from(), reference(), reference()}},
                monitors = #{} :: #{reference() => pos_integer()},
                %% Cancels owed to the program (caravan_port_cancel).
                cancels = caravan_port_cancel:new() :: caravan_port_cancel:cancels(),
                counters = #{cancels_sent => 0, cancels_delayed => 0, late_replies => 0,
                             chunked_replies => 0, chunks => 0}
                    :: #{atom() => non_neg_integer()},
                max_pending :: pos_integer(),
                backoff_min :: non_neg_integer(),
                backoff_max :: pos_integer(),
                backoff = 0 :: non_neg_integer(),
                failures = 0 :: non_neg_integer(),
                hangs = 0 :: non_neg_integer(),
                start_error :: term(),
                liveness_interval :: pos_integer(),
                liveness_timeout :: pos_integer(),
                probe :: {pos_integer(), reference()} | undefined,
                max_reply :: pos_integer(),
                %% Who kills a hung program, and the killers running.
                kills :: caravan_port_killer:kills(),
                %% A reply not yet whole (caravan_port_frame), and those
                %% arriving in chunks (caravan_port_chunks).
                buf = caravan_port_frame:new() :: caravan_port_frame:buf(),
                chunks = caravan_port_chunks:new() :: caravan_port_chunks:chunks()}).
