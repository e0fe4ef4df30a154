%%% @doc Owner of one `caravan_port' OS process: the only module that speaks
%%% the wire protocol (docs/protocol.md).
%%%
%%% Callers never block the owner and are never crashed by it: each request
%%% gets an id, the caller's `From' is parked until the matching reply, a
%%% timer or the program's exit answers it, and every way of failing comes
%%% back as `{error, Reason}'. When the program dies the owner starts it again
%%% by itself (immediately after a healthy life, with backoff in a crash
%%% loop), because one of its users, caravan_epmd, sits under kernel's
%%% supervisors which allow no restarts at all.
%%%
%%% Its parts: caravan_port_frame (framing, decoding, the protocol's
%%% atoms), caravan_port_killer (killing a hung program), caravan_port_cancel
%%% (the cancels owed to the program), caravan_port_reply (the program's
%%% output matched to callers), caravan_port_chunks (replies arriving in
%%% chunks, whose caller joins and decodes them: the owner never spends a
%%% big reply's decoding); the state is in caravan_port_state.hrl.
-module(caravan_port).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

%% API
-export([start_link/2]).
-export([call/4]).
-export([call_within/4]).
-export([os_pid/1]).
-export([counters/1]).
-export([default_program/0]).

%% gen_server callbacks
-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).
-export([terminate/2]).

-export_type([options/0, error_reason/0]).

-type options() :: #{program => file:filename(),
                     max_pending => pos_integer(),
                     backoff_min_ms => non_neg_integer(),
                     backoff_max_ms => pos_integer(),
                     liveness_interval_ms => pos_integer(),
                     liveness_timeout_ms => pos_integer(),
                     max_reply_bytes => pos_integer(),
                     killer => file:filename()}.
%% `unavailable': the program is not running (not startable, or restarting).
%% `{port_exited, Status}': it died with this call outstanding.
%% `overload': more than max_pending calls are outstanding.
%% `{Reason, Detail}': the program's own error reply (docs/protocol.md).
-type error_reason() :: unavailable | timeout | overload | {port_exited, term()}
                      | {bad_reply, term()} | {atom(), binary()}.

%% A call's timeout, ms: within what erlang:start_timer/3 and a receive take
%% (2^32-1), with room for the call margin added to it.
-define(MAX_TIMEOUT_MS, 2147483647).
-define(VALID_TIMEOUT(T), (is_integer(T) andalso T >= 0 andalso T =< ?MAX_TIMEOUT_MS)).

%% A program that lived this long, or answered anything, was healthy: its
%% death is an accident (a kill, an OOM) and it restarts at once. Shorter
%% lives are a crash loop and back off.
-define(HEALTHY_LIFE_MS, 1000).
%% Above this many outstanding calls new ones are refused with overload:
%% the program answers in microseconds, so a backlog this deep means it is
%% stuck and queueing more would only grow memory.
-define(DEFAULT_MAX_PENDING, 4096).
-define(DEFAULT_BACKOFF_MIN_MS, 10).
-define(DEFAULT_BACKOFF_MAX_MS, 2000).
%% Margin on top of a call's own timeout for the gen_server:call itself, so
%% the owner's timer (which knows the id) normally answers first.
-define(CALL_MARGIN_MS, 1000).
%% Liveness: a ping every interval; no pong within the timeout means the
%% program is hung (stopped, deadlocked), and it is killed and restarted.
%% A healthy program answers a ping in microseconds, even when busy.
-define(LIVENESS_INTERVAL_MS, 5000).
-define(LIVENESS_TIMEOUT_MS, 2000).
%% A program that hangs again and again (alive, reading, never answering)
%% is not killed and replaced every interval + timeout: the next start
%% waits one interval, then twice that, up to this bound.
-define(HANG_BACKOFF_MAX_MS, 60000).
%% The largest reply read: a larger announced length is a broken program
%% (or a corrupted header, see caravan_port_frame): it is killed and restarted.
-define(DEFAULT_MAX_REPLY_BYTES, 64 * 1024 * 1024).

-include("caravan_port_state.hrl").

%%%---------------------------------------------------------------------------
%%% API
%%%---------------------------------------------------------------------------

%% @doc Starts an owner registered as `Name'. Succeeds even when the program
%% cannot be started: it logs once and keeps trying with backoff.
-spec start_link(Name, Options) -> {ok, pid()} | {error, term()} when
      Name :: atom(),
      Options :: options().
start_link(Name, Options) ->
    gen_server:start_link({local, Name}, ?MODULE, {Name, Options}, []).

%% @doc Sends `{Id, Op, Args}' and waits at most `Timeout' ms for the reply.
-spec call(Server, Op, Args, Timeout) -> {ok, term()} | {error, error_reason()} when
      Server :: atom() | pid(),
      Op :: atom(),
      Args :: map(),
      Timeout :: non_neg_integer().
call(Server, Op, Args, Timeout) ->
    request(Server, Op, Args, Timeout, margin).

%% @doc As call/4, but `Timeout' bounds the whole call, the wait for a busy
%% owner included: for callers such as port_please/3 that were given a
%% deadline themselves.
-spec call_within(Server, Op, Args, Timeout) -> {ok, term()} | {error, error_reason()} when
      Server :: atom() | pid(),
      Op :: atom(),
      Args :: map(),
      Timeout :: non_neg_integer().
call_within(Server, Op, Args, Timeout) ->
    request(Server, Op, Args, Timeout, within).

%% call/4 and call_within/4 differ only in how long the gen_server:call
%% waits for the owner: `margin' past the request's own timer (so that the
%% owner, which knows the id, normally answers first), or `within' it.
-spec request(atom() | pid(), atom(), map(), non_neg_integer(), margin | within) ->
          {ok, term()} | {error, error_reason()}.
request(_Server, _Op, _Args, Timeout, _Wait) when not ?VALID_TIMEOUT(Timeout) ->
    bad_timeout(Timeout);
request(Server, Op, Args, Timeout, Wait) when is_atom(Op), is_map(Args) ->
    CallTimeout = case Wait of
                      margin -> Timeout + ?CALL_MARGIN_MS;
                      within -> max(Timeout, 1)
                  end,
    try gen_server:call(Server, {call, Op, Args, Timeout}, CallTimeout) of
        {chunked, Id, Parts} -> caravan_port_chunks:join(Id, Parts);
        Reply -> Reply
    catch
        exit:{noproc, _} -> {error, unavailable};
        exit:{timeout, _} -> {error, timeout};
        exit:{Reason, _} -> {error, {port_exited, Reason}}
    end.

%% @doc The OS pid of the running program, for operators and fault tests.
-spec os_pid(Server :: atom() | pid()) -> {ok, non_neg_integer()} | {error, unavailable}.
os_pid(Server) ->
    try gen_server:call(Server, os_pid, 5000)
    catch exit:_ -> {error, unavailable}
    end.

%% @doc The owner's own counters: `pending' calls, `monitors' of their
%% callers (as many, or the table leaks), `cancels_sent' (a
%% caller gone or timed out before its reply), `cancels_delayed' (times
%% the port was busy and cancels waited for a retry), `unsent' (cancels
%% waiting now) and `late_replies' (replies no caller waits for, dropped:
%% those of cancelled requests that crossed their cancel, and the cancels'
%% own), `chunked_replies' and `chunks' (replies that came in chunks, and
%% their chunks) and `partial_replies' (begun, not whole yet).
-spec counters(Server :: atom() | pid()) -> {ok, #{atom() => non_neg_integer()}}
                                            | {error, unavailable}.
counters(Server) ->
    try gen_server:call(Server, counters, 5000)
    catch exit:_ -> {error, unavailable}
    end.

%% @doc The program shipped in caravan's priv directory.
-spec default_program() -> {ok, file:filename()} | {error, no_priv_dir}.
default_program() ->
    case code:priv_dir(caravan) of
        {error, _} -> {error, no_priv_dir};
        Dir -> {ok, filename:join(Dir, "caravan_port")}
    end.

%%%---------------------------------------------------------------------------
%%% gen_server callbacks
%%%---------------------------------------------------------------------------

-spec init({atom(), options()}) -> {ok, #state{}}.
init({Name, Options}) ->
    process_flag(trap_exit, true),
    %% Metadata, not a logger domain: OTP's default handler drops every
    %% domain outside [otp], which would hide caravan's messages by default.
    logger:update_process_metadata(#{caravan => port, port_owner => Name}),
    Program = case maps:find(program, Options) of
                  {ok, P} -> P;
                  error ->
                      case default_program() of
                          {ok, P} -> P;
                          {error, no_priv_dir} -> "<caravan priv dir not found>/caravan_port"
                      end
              end,
    State = #state{name = Name,
                   program = Program,
                   max_pending = maps:get(max_pending, Options, ?DEFAULT_MAX_PENDING),
                   backoff_min = maps:get(backoff_min_ms, Options, ?DEFAULT_BACKOFF_MIN_MS),
                   backoff_max = maps:get(backoff_max_ms, Options, ?DEFAULT_BACKOFF_MAX_MS),
                   liveness_interval = maps:get(liveness_interval_ms, Options,
                                                ?LIVENESS_INTERVAL_MS),
                   liveness_timeout = maps:get(liveness_timeout_ms, Options,
                                               ?LIVENESS_TIMEOUT_MS),
                   max_reply = maps:get(max_reply_bytes, Options, ?DEFAULT_MAX_REPLY_BYTES),
                   kills = caravan_port_killer:new(Options, Program)},
    erlang:send_after(State#state.liveness_interval, self(), probe),
    {ok, open(State)}.

-spec handle_call(term(), gen_server:from(), #state{}) ->
          {reply, term(), #state{}} | {noreply, #state{}}.
handle_call({call, _Op, _Args, Timeout}, _From, State) when not ?VALID_TIMEOUT(Timeout) ->
    %% start_timer/3 would raise here, and the owner's end would fail every
    %% other call in flight.
    {reply, bad_timeout(Timeout), State};
handle_call({call, _Op, _Args, _Timeout}, _From, #state{port = undefined} = State) ->
    {reply, {error, unavailable}, State};
handle_call({call, _Op, _Args, _Timeout}, _From, #state{pending = Pending,
                                                        max_pending = Max} = State)
  when map_size(Pending) >= Max ->
    {reply, {error, overload}, State};
handle_call({call, Op, Args, Timeout}, From, #state{port = Port, next_id = Id} = State) ->
    %% nosuspend: a program that stops reading (hung, stopped) fills the pipe
    %% and makes the port busy; a plain port_command would then suspend this
    %% process, and with it every caller. Refuse instead.
    try erlang:port_command(Port, caravan_port_frame:frame({Id, Op, Args}), [nosuspend]) of
        true ->
            Timer = erlang:start_timer(Timeout, self(), {call_timeout, Id}),
            {Caller, _} = From,
            Mon = erlang:monitor(process, Caller),
            Pending = maps:put(Id, {From, Timer, Mon}, State#state.pending),
            Monitors = maps:put(Mon, Id, State#state.monitors),
            {noreply, State#state{next_id = Id + 1, pending = Pending, monitors = Monitors}};
        false ->
            {reply, {error, overload}, State}
    catch
        error:badarg ->
            %% The port closed under us; its exit message follows.
            {reply, {error, unavailable}, State}
    end;
handle_call(counters, _From, #state{counters = Counters, pending = Pending,
                                    monitors = Monitors} = State) ->
    {reply, {ok, Counters#{pending => map_size(Pending), monitors => map_size(Monitors),
                           unsent => caravan_port_cancel:unsent(State#state.cancels),
                           partial_replies => caravan_port_chunks:partial(State#state.chunks)}},
     State};
handle_call(os_pid, _From, #state{os_pid = undefined} = State) ->
    {reply, {error, unavailable}, State};
handle_call(os_pid, _From, #state{os_pid = OsPid} = State) ->
    {reply, {ok, OsPid}, State};
handle_call(Request, _From, State) ->
    ?LOG_WARNING("caravan_port: unexpected call ~0P", [Request, 20]),
    {reply, {error, unknown_request}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(Msg, State) ->
    ?LOG_WARNING("caravan_port: unexpected cast ~0P", [Msg, 20]),
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({Port, {data, Bin}}, #state{port = Port} = State) ->
    {noreply, received(Bin, State)};
handle_info({Port, {exit_status, Status}}, #state{port = Port} = State) ->
    {noreply, program_exited({exit_status, Status}, State)};
handle_info({'EXIT', Port, Reason}, #state{port = Port} = State) ->
    {noreply, program_exited(Reason, State)};
handle_info({'EXIT', _OldPort, _}, State) ->
    %% The close of a port already handled through its exit_status.
    {noreply, State};
handle_info({timeout, Timer, {call_timeout, Id}}, #state{pending = Pending} = State) ->
    case maps:take(Id, Pending) of
        {{From, Timer, Mon}, Rest} ->
            gen_server:reply(From, {error, timeout}),
            Monitors = caravan_port_reply:forget_monitor(Mon, State),
            {noreply, cancel(Id, State#state{pending = Rest, monitors = Monitors})};
        _ ->
            {noreply, State}
    end;
handle_info({'DOWN', Mon, process, _, _}, #state{monitors = Monitors} = State)
  when is_map_key(Mon, Monitors) ->
    %% The caller is gone (killed, or a watch stopped): nobody will read
    %% this reply, and the program need not work on for it.
    {Id, Rest} = maps:take(Mon, Monitors),
    {{_, Timer, Mon}, Pending} = maps:take(Id, State#state.pending),
    _ = erlang:cancel_timer(Timer, [{async, true}, {info, false}]),
    {noreply, cancel(Id, State#state{pending = Pending, monitors = Rest})};
handle_info(retry_cancels, State) ->
    {noreply, send_cancels(State#state{cancels = caravan_port_cancel:retry_fired(
                                                   State#state.cancels)})};
handle_info(restart, #state{port = undefined} = State) ->
    {noreply, open(State)};
handle_info(probe, State) ->
    erlang:send_after(State#state.liveness_interval, self(), probe),
    {noreply, probe(State)};
handle_info({timeout, Timer, {probe_timeout, Id}}, #state{probe = {Id, Timer}} = State) ->
    {noreply, hung(State#state{probe = undefined})};
handle_info({Killer, {exit_status, _}} = Msg, #state{kills = Kills} = State)
  when is_port(Killer) ->
    %% A killer's exit, or a program's already killed and closed.
    {noreply, State#state{kills = caravan_port_killer:handle(Msg, Kills)}};
handle_info({timeout, _, {killer_timeout, _}} = Msg, #state{kills = Kills} = State) ->
    {noreply, State#state{kills = caravan_port_killer:handle(Msg, Kills)}};
handle_info({kill, _, _} = Msg, #state{kills = Kills} = State) ->
    {noreply, State#state{kills = caravan_port_killer:handle(Msg, Kills)}};
handle_info({OldPort, _}, State) when is_port(OldPort) ->
    {noreply, State}; % output or exit of a program already killed and closed
handle_info(Msg, State) ->
    ?LOG_WARNING("caravan_port: unexpected message ~0P", [Msg, 20]),
    {noreply, State}.

-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{port = Port} = State) ->
    fail_pending(unavailable, State),
    close(Port).

%%%---------------------------------------------------------------------------
%%% Internal
%%%---------------------------------------------------------------------------

open(#state{program = Program} = State) ->
    %% The program bounds each reply by what this owner reads: an answer
    %% past it is that request's {error, {too_large, _}}, where a reply
    %% over the limit would make this owner kill the program and fail
    %% every request in flight with it (port_src/ops.h).
    Env = [{"CARAVAN_MAX_REPLY_BYTES", integer_to_list(State#state.max_reply)}],
    try open_port({spawn_executable, Program},
                  [stream, binary, exit_status, use_stdio, {env, Env}]) of
        Port ->
            OsPid = case erlang:port_info(Port, os_pid) of
                        {os_pid, P} -> P;
                        undefined -> undefined
                    end,
            case State#state.start_error of
                undefined -> ok;
                _ -> ?LOG_NOTICE("caravan_port: ~ts started after earlier failures",
                                 [Program])
            end,
            State#state{port = Port, os_pid = OsPid, answered = false,
                        buf = caravan_port_frame:new(),
                        started_at = erlang:monotonic_time(millisecond),
                        start_error = undefined}
    catch
        error:Reason ->
            %% One line per distinct failure: a missing program at boot must be
            %% clear, and must not flood the log while we keep retrying.
            case State#state.start_error of
                Reason -> ok;
                _ -> ?LOG_ERROR("caravan_port: cannot start ~ts: ~tp (retrying in the "
                                "background)", [Program, Reason])
            end,
            schedule_restart(State#state{start_error = Reason, port = undefined,
                                         os_pid = undefined})
    end.

bad_timeout(Timeout) ->
    {error, {bad_args, iolist_to_binary(io_lib:format("timeout: ~0P is not 0..~b ms",
                                                      [Timeout, 10, ?MAX_TIMEOUT_MS]))}}.

%% Output of the program: each reply it completes answered in order
%% (caravan_port_reply), or the program killed for a broken header or chunk.
received(Bin, State) ->
    case caravan_port_reply:received(Bin, State) of
        {ok, State1} -> State1;
        {broken, Reason, Format, Args, State1} -> broken(Reason, Format, Args, State1)
    end.

%% The program sent what no healthy one does: it is killed and started
%% again (one line saying why), every call in flight failing with
%% {port_exited, Reason}.
broken(Reason, Format, Args, #state{port = Port, os_pid = OsPid, program = Program} = State) ->
    ?LOG_ERROR("caravan_port: ~ts (os pid ~p) " ++ Format ++ "; killing it",
               [Program, OsPid | Args]),
    State1 = State#state{kills = caravan_port_killer:kill(OsPid, State#state.kills)},
    close(Port),
    program_exited(Reason, State1#state{buf = caravan_port_frame:new()}).

program_exited(Reason, #state{program = Program, started_at = Started} = State) ->
    Lived = erlang:monotonic_time(millisecond) - Started,
    %% A program that sent a broken header or chunk is not healthy, whatever
    %% it did before.
    Healthy = Reason =/= too_large andalso Reason =/= protocol_error andalso
        (State#state.answered orelse Lived >= ?HEALTHY_LIFE_MS),
    Failures = case Healthy of
                   true -> 0;
                   false -> State#state.failures + 1
               end,
    fail_pending({port_exited, Reason}, State),
    State1 = State#state{port = undefined, os_pid = undefined, pending = #{}, monitors = #{},
                         cancels = caravan_port_cancel:clear(State#state.cancels),
                         failures = Failures, probe = undefined,
                         buf = caravan_port_frame:new(), chunks = caravan_port_chunks:new()},
    case Healthy of
        true ->
            ?LOG_WARNING("caravan_port: ~ts exited (~0p) after ~b ms; restarting it",
                         [Program, Reason, Lived]),
            open(State1#state{backoff = 0});
        false ->
            State2 = schedule_restart(State1),
            %% A crash loop logs at 1, 2, 4, 8... failures, not at every one.
            case is_power_of_two(Failures) of
                true -> ?LOG_WARNING("caravan_port: ~ts exited (~0p) after ~b ms, ~b quick "
                                     "failures in a row; next start in ~b ms",
                                     [Program, Reason, Lived, Failures, State2#state.backoff]);
                false -> ok
            end,
            State2
    end.

%% Sends a ping of the owner's own; no caller waits on it.
probe(#state{port = undefined} = State) ->
    State;
probe(#state{probe = {_, _}} = State) ->
    State; % the last probe is still out; its timer decides
probe(#state{port = Port, next_id = Id} = State) ->
    try erlang:port_command(Port, caravan_port_frame:frame({Id, ping, #{}}), [nosuspend]) of
        true ->
            Timer = erlang:start_timer(State#state.liveness_timeout, self(), {probe_timeout, Id}),
            State#state{next_id = Id + 1, probe = {Id, Timer}};
        false ->
            %% Busy: the program is not reading. The next probe decides;
            %% meanwhile callers get overload.
            State
    catch
        error:badarg -> State
    end.

%% The program did not answer a ping: it is stopped or stuck. Kill it (a
%% stopped process would ignore the closing of its stdin) and start anew,
%% later each time it hangs again: a program that is alive but hung is not
%% healthy, whatever it answered before it hung. One log line at the 1st,
%% 2nd, 4th, 8th... hang in a row.
hung(#state{port = Port, os_pid = OsPid, program = Program, hangs = Hangs0} = State) ->
    Hangs = Hangs0 + 1,
    Delay = min(?HANG_BACKOFF_MAX_MS, State#state.liveness_interval bsl min(Hangs - 1, 16)),
    case is_power_of_two(Hangs) of
        true -> ?LOG_ERROR("caravan_port: ~ts (os pid ~p) did not answer a liveness ping "
                           "within ~b ms, ~b hang(s) in a row; killed it, next start in ~b ms",
                           [Program, OsPid, State#state.liveness_timeout, Hangs, Delay]);
        false -> ok
    end,
    State1 = State#state{kills = caravan_port_killer:kill(OsPid, State#state.kills)},
    close(Port),
    fail_pending({port_exited, hung}, State1),
    erlang:send_after(Delay, self(), restart),
    State1#state{port = undefined, os_pid = undefined, pending = #{}, monitors = #{},
                cancels = caravan_port_cancel:clear(State1#state.cancels), probe = undefined,
                chunks = caravan_port_chunks:new(), hangs = Hangs, backoff = 0}.

%% Closing a port that already went away raises badarg: nothing to do then.
close(undefined) ->
    ok;
close(Port) ->
    try port_close(Port) of
        true -> ok
    catch
        error:badarg -> ok
    end.

schedule_restart(#state{backoff = Backoff, backoff_min = Min, backoff_max = Max} = State) ->
    Delay = min(Max, max(Min, Backoff * 2)),
    erlang:send_after(Delay, self(), restart),
    State#state{backoff = Delay}.

fail_pending(Reason, #state{pending = Pending}) ->
    maps:foreach(fun(_Id, {From, Timer, Mon}) ->
                         _ = erlang:cancel_timer(Timer, [{async, true}, {info, false}]),
                         erlang:demonitor(Mon, [flush]),
                         gen_server:reply(From, {error, Reason})
                 end, Pending).

is_power_of_two(N) -> N band (N - 1) =:= 0.

%% Request Id has nobody waiting: the program is told (caravan_port_cancel).
%% A reply it was sending in chunks is forgotten (its chunks still on the
%% pipe are dropped as they come).
-spec cancel(pos_integer(), #state{}) -> #state{}.
cancel(_Id, #state{port = undefined} = State) ->
    State;
cancel(Id, #state{cancels = Cancels, chunks = Chunks} = State) ->
    send_cancels(State#state{cancels = caravan_port_cancel:queue(Id, Cancels),
                             chunks = caravan_port_chunks:forget(Id, Chunks)}).

-spec send_cancels(#state{}) -> #state{}.
send_cancels(#state{port = Port, next_id = Id, counters = Counters, cancels = C} = State) ->
    {Id1, Counters1, C1} = caravan_port_cancel:send(Port, Id, Counters, C),
    State#state{next_id = Id1, counters = Counters1, cancels = C1}.
