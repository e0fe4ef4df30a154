%%% @doc One registration of this node with the local Consul agent, kept:
%%% registered at start (PUT /v1/agent/service/register, through the C
%%% program: caravan_port's consul_register), registered again when the
%%% agent lost it, deregistered on stop. See caravan_register_config for
%%% what is registered.
%%%
%%% Faults never stop the node: an agent that is down or refuses (a bad
%%% token: 401/403, an error naming `service:write') is retried with
%%% backoff, `retry_min' doubling up to `retry_max'; status/1 shows the
%%% state and the last error. Every `recheck' ms (default 10000) a
%%% registered node asks the health API (passing or not, consistent, not
%%% cached) whether its ID is still listed; an agent restarted without it
%%% gets it again. A TTL check (`check => #{ttl => "15s"}') is reported
%%% passing every third of its TTL (consul_check_pass) while registered.
%%% Requests run in a short-lived process: status/1 and
%%% deregister/1 are answered while the agent is slow.
%%%
%%% Stop: caravan_app:prep_stop/1 calls deregister_all/0 before the
%%% clusters send their departure notices and drop their connections, so
%%% peers see the service go before its connections; terminate/2
%%% deregisters when only the application stops.
-module(caravan_register).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

-export([start_link/1]).
-export([status/1]).
-export([deregister/1]).
-export([deregister_all/0]).
-export([status_all/0]).

-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).
-export([terminate/2]).
-export([format_status/1]).

%% Defaults: a retry after 500 ms, doubling to 30 s; a recheck every 10 s.
-define(RETRY_MIN_MS, 500).
-define(RETRY_MAX_MS, 30000).
-define(RECHECK_MS, 10000).
-define(TIMEOUT_MS, 5000).
%% caravan_port's reply comes a little after the program's own timeout.
-define(MARGIN_MS, 2000).
-define(OWNER, caravan_lookup).

-type state_name() :: registering | registered | retrying | deregistered.

-record(state, {registration :: caravan_register_config:registration(),
                service :: binary(),
                id :: binary(),
                args :: map() | undefined,        % consul_register's, connection included
                conn :: map(),
                options :: map(),
                state = registering :: state_name(),
                last_error :: undefined | binary(),
                last_success :: undefined | integer(),
                attempts = 0 :: non_neg_integer(),
                registrations = 0 :: non_neg_integer(),
                worker :: undefined | {pid(), reference(), register | recheck},
                timer :: undefined | reference(),
                ttl :: undefined | pos_integer(),          % the TTL check's, ms
                ttl_timer :: undefined | reference()}).

%%%---------------------------------------------------------------------------
%%% API

-spec start_link(caravan_register_config:registration()) -> {ok, pid()} | {error, term()}.
start_link(Registration) ->
    gen_server:start_link(?MODULE, Registration, []).

%% @doc `#{registration := consul, service, id, state, last_error,
%% last_success, attempts, registrations}'; state is registering,
%% registered, retrying or deregistered.
-spec status(pid()) -> map().
status(Pid) ->
    gen_server:call(Pid, status, ?TIMEOUT_MS).

%% @doc Deregisters now and stays deregistered: ok, or the agent's error.
-spec deregister(pid()) -> ok | {error, caravan:error()}.
deregister(Pid) ->
    gen_server:call(Pid, deregister, ?TIMEOUT_MS + 2 * ?MARGIN_MS).

%% @doc Every registration of this node, deregistered; the services are
%% gone from the agent when this returns (or their error logged).
-spec deregister_all() -> [ok | {error, term()}].
deregister_all() ->
    Pids = caravan_register_sup:registrations(),
    Self = self(),
    %% In parallel: a slow agent costs one timeout, not one per service.
    Refs = [begin
                Ref = make_ref(),
                _ = spawn(fun() -> Self ! {Ref, try deregister(P) catch exit:R -> {error, R} end} end),
                Ref
            end || P <- Pids],
    [receive {Ref, Result} -> Result
     after ?TIMEOUT_MS + 3 * ?MARGIN_MS -> {error, timeout}
     end || Ref <- Refs].

%% @doc status/1 of every registration, sorted by service.
-spec status_all() -> [map()].
status_all() ->
    lists:sort([S || P <- caravan_register_sup:registrations(),
                     S <- [try status(P) catch exit:_ -> undefined end], S =/= undefined]).

%%%---------------------------------------------------------------------------
%%% gen_server callbacks

-spec init(caravan_register_config:registration()) -> {ok, #state{}} | {stop, term()}.
init(Registration) ->
    case caravan_register_config:check(Registration) of
        ok ->
            process_flag(trap_exit, true),
            {consul, Options} = Registration,
            Service = unicode:characters_to_binary(maps:get(service, Options)),
            case caravan_catalog:connection(Options, caravan_consul:env()) of
                {ok, Conn} ->
                    S = #state{registration = Registration, service = Service,
                               id = caravan_register_config:service_id(Service, node()),
                               conn = Conn, options = Options,
                               ttl = caravan_register_config:ttl_ms(Options)},
                    {ok, attempt(S)};
                {error, {bad_args, Text}} ->
                    {stop, {bad_args, Text}}
            end;
        {error, Reason} ->
            {stop, {bad_args, caravan_register_config:text(Reason)}}
    end.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(status, _From, S) ->
    {reply, status_map(S), S};
handle_call(deregister, _From, S) ->
    {Reply, S1} = do_deregister(S),
    {reply, Reply, S1};
handle_call(_Other, _From, S) ->
    {reply, {error, unknown_call}, S}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, S) ->
    {noreply, S}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({timeout, T, ttl_pass}, #state{ttl_timer = T} = S) ->
    {noreply, ttl_pass(S#state{ttl_timer = undefined})};
handle_info({ttl_passed, _Result}, S) ->
    %% A failed report is not retried early: the next one comes a third
    %% of the TTL later, and the check's state is the agent's to show.
    {noreply, S};
handle_info({timeout, T, Why}, #state{timer = T} = S) ->
    S1 = S#state{timer = undefined},
    case Why of
        register -> {noreply, attempt(S1)};
        recheck -> {noreply, recheck(S1)}
    end;
handle_info({Pid, Result}, #state{worker = {Pid, MRef, What}} = S) when is_pid(Pid) ->
    erlang:demonitor(MRef, [flush]),
    {noreply, done(What, Result, S#state{worker = undefined})};
handle_info({'DOWN', MRef, process, _, Why}, #state{worker = {_, MRef, What}} = S) ->
    {noreply, done(What, {error, {crashed, fmt("~0P", [Why, 20])}}, S#state{worker = undefined})};
handle_info({'EXIT', _, Why}, S) when Why =/= normal ->
    {stop, Why, S};
handle_info(_Other, S) ->
    {noreply, S}.

-spec terminate(term(), #state{}) -> ok.
terminate(_Why, #state{state = deregistered}) ->
    ok;
terminate(_Why, S) ->
    _ = do_deregister(S),
    ok.

%% IMPORTANT: the state holds the ACL token (in the registration, options,
%% conn and args); a crash report or sys:get_status/1 shows it masked.
-spec format_status(Status) -> Status when
      Status :: #{state => term(), message => term(), reason => term(), log => [term()]}.
format_status(#{state := #state{registration = {consul, R}, options = O, conn = C,
                                args = A} = S} = Status) ->
    Status#{state := S#state{registration = {consul, mask(R)}, options = mask(O),
                             conn = mask(C), args = mask(A)}};
format_status(Status) ->
    Status.

mask(M) when is_map(M) -> maps:map(fun(token, _) -> <<"***">>; (_, V) -> V end, M);
mask(Other) -> Other.

%%%---------------------------------------------------------------------------
%%% internal

%% A registration attempt, unless one runs; the node's name decides the
%% arguments each time (it may have started distribution since).
attempt(#state{state = deregistered} = S) ->
    S;
attempt(#state{worker = {_, _, _}} = S) ->
    S;
attempt(#state{options = Options, conn = Conn} = S) ->
    case caravan_register_config:args(Options, node()) of
        {ok, Args} ->
            Timeout = maps:get(timeout, Options, ?TIMEOUT_MS),
            Full = maps:merge(Conn, Args#{timeout_ms => Timeout}),
            run(register, fun() -> caravan_port:call(?OWNER, consul_register, Full,
                                                    Timeout + ?MARGIN_MS) end,
                S#state{args = Full, id = maps:get(id, Args)});
        {error, _} = Error ->
            done(register, Error, S)
    end.

recheck(#state{state = registered, options = Options, conn = Conn, service = Service} = S) ->
    Query = maps:merge(maps:with([timeout], Options),
                       maps:merge(Conn, #{service => Service, basename => <<"x">>,
                                          passing => false, consistency => default,
                                          cached => false})),
    run(recheck, fun() -> caravan_consul:query(Query, 0) end, S);
recheck(S) ->
    S.

run(What, Fun, S) ->
    Self = self(),
    {Pid, MRef} = spawn_monitor(fun() -> Self ! {self(), Fun()} end),
    S#state{worker = {Pid, MRef, What}}.

done(register, {ok, _}, #state{state = Was} = S) ->
    case Was of
        registered -> ok;
        _ -> ?LOG_INFO(#{msg => "registered with the Consul agent", service => S#state.service,
                         id => S#state.id}, #{caravan => register})
    end,
    ttl_pass(schedule(recheck_ms(S), recheck,
                      S#state{state = registered, attempts = 0, last_success = now_ms(),
                              registrations = S#state.registrations + 1}));
done(register, {error, Reason}, S) ->
    retry(error_text(Reason, S), S);
done(recheck, {ok, #{members := Members}}, #state{id = Id} = S) ->
    case lists:any(fun(#{id := I}) -> I =:= Id end, Members) of
        true ->
            schedule(recheck_ms(S), recheck, S#state{last_success = now_ms()});
        false ->
            ?LOG_WARNING(#{msg => "the Consul agent no longer lists this node's service; "
                                  "registering it again", service => S#state.service, id => Id},
                         #{caravan => register}),
            attempt(S#state{state = registering})
    end;
done(recheck, {error, Reason}, S) ->
    %% The agent is down or refuses: registering again finds out which, and
    %% backs off.
    attempt(S#state{state = registering, last_error = error_text(Reason, S)}).

%% Reports the TTL check passing now and every third of its TTL after, in a
%% process of its own (its answer is dropped: handle_info/2); stops with
%% the registration.
ttl_pass(#state{ttl = undefined} = S) ->
    S;
ttl_pass(#state{state = registered, ttl = Ttl, conn = Conn, id = Id, options = Options,
                ttl_timer = Old} = S) ->
    _ = case Old of undefined -> ok; _ -> erlang:cancel_timer(Old) end,
    Timeout = min(maps:get(timeout, Options, ?TIMEOUT_MS), max(1, Ttl div 3)),
    Self = self(),
    _ = spawn(fun() ->
                      Self ! {ttl_passed, caravan_port:call(?OWNER, consul_check_pass,
                                                        maps:merge(Conn, #{id => Id,
                                                                           timeout_ms => Timeout}),
                                                        Timeout + ?MARGIN_MS)}
              end),
    S#state{ttl_timer = erlang:start_timer(max(1, Ttl div 3), self(), ttl_pass)};
ttl_pass(S) ->
    S.

retry(Text, #state{attempts = N, options = Options} = S) ->
    Min = maps:get(retry_min, Options, ?RETRY_MIN_MS),
    Max = maps:get(retry_max, Options, ?RETRY_MAX_MS),
    Delay = min(Max, Min bsl min(N, 20)),
    %% One line per streak, then one per failure at debug: no log storm.
    case N of
        0 -> ?LOG_ERROR(#{msg => "Consul registration failed; retrying with backoff",
                          service => S#state.service, error => Text, retry_ms => Delay},
                        #{caravan => register});
        _ -> ?LOG_DEBUG(#{msg => "Consul registration failed again", service => S#state.service,
                          error => Text, retry_ms => Delay}, #{caravan => register})
    end,
    schedule(Delay, register, S#state{state = retrying, attempts = N + 1, last_error = Text}).

schedule(Ms, What, #state{timer = Old} = S) ->
    _ = case Old of undefined -> ok; _ -> erlang:cancel_timer(Old) end,
    S#state{timer = erlang:start_timer(Ms, self(), What)}.

recheck_ms(#state{options = Options}) ->
    maps:get(recheck, Options, ?RECHECK_MS).

%% Deregisters at once: a request in flight is let go (its answer is
%% ignored), no timer fires any more. A service never registered is
%% deregistered all the same: the agent may hold it from before a restart.
do_deregister(#state{state = deregistered} = S) ->
    {ok, S};
do_deregister(#state{conn = Conn, id = Id, options = Options, timer = T, worker = W,
                     ttl_timer = TT} = S) ->
    _ = [erlang:cancel_timer(R) || R <- [T, TT], R =/= undefined],
    Timeout = maps:get(timeout, Options, ?TIMEOUT_MS),
    %% IMPORTANT: a registration in flight is waited for: sent after the
    %% deregistration, it would list the node again on its way out.
    _ = case W of
            {Pid, MRef, register} ->
                receive {Pid, _} -> erlang:demonitor(MRef, [flush]);
                        {'DOWN', MRef, process, _, _} -> ok
                after Timeout + ?MARGIN_MS -> erlang:demonitor(MRef, [flush])
                end;
            {_, MRef, recheck} -> erlang:demonitor(MRef, [flush]);
            undefined -> ok
        end,
    Result = caravan_port:call(?OWNER, consul_deregister,
                               maps:merge(Conn, #{id => Id, timeout_ms => Timeout}),
                               Timeout + ?MARGIN_MS),
    S1 = S#state{timer = undefined, ttl_timer = undefined, worker = undefined,
                 state = deregistered},
    case Result of
        {ok, _} ->
            ?LOG_INFO(#{msg => "deregistered from the Consul agent", service => S#state.service,
                        id => Id}, #{caravan => register}),
            {ok, S1};
        {error, Reason} ->
            Text = error_text(Reason, S),
            ?LOG_WARNING(#{msg => "Consul deregistration failed", service => S#state.service,
                           error => Text}, #{caravan => register}),
            {{error, Reason}, S1#state{last_error = Text}}
    end.

%% IMPORTANT: the text comes from the C program, which masks the token in
%% the agent's answer (catalog_detail.h); nothing here adds the token or
%% the options that hold it.
error_text({forbidden, Detail}, #state{service = Service}) ->
    fmt("the Consul agent refused the token (~s): registering service ~s needs an ACL token "
        "with service:write on it (CONSUL_HTTP_TOKEN or the token option)", [Detail, Service]);
error_text({Reason, Detail}, _S) when is_atom(Reason), is_binary(Detail) ->
    fmt("~s: ~s", [Reason, Detail]);
error_text(Reason, _S) ->
    fmt("~0P", [Reason, 20]).

status_map(S) ->
    #{registration => consul,
      service => S#state.service,
      id => S#state.id,
      state => S#state.state,
      last_error => S#state.last_error,
      last_success => S#state.last_success,
      attempts => S#state.attempts,
      registrations => S#state.registrations}.

now_ms() ->
    erlang:system_time(millisecond).

fmt(Format, Args) ->
    unicode:characters_to_binary(io_lib:format(Format, Args)).
