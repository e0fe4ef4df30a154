%%% @doc A watch on a Consul or Nomad service with blocking queries: the
%%% subscriber gets `{caravan_watch, Watch, {members, [node()]}}' each time
%%% the member list changes (the first answer included), and
%%% `{caravan_watch, Watch, {error, Reason}}' when the source starts failing
%%% (once per distinct error; the members it last had stand).
%%%
%%% The index rules are Consul's (docs, "Blocking Queries - Implementation
%%% Details"), which Nomad shares: the next query carries the index of the
%%% last answer; an index that goes backwards resets to 0 (one non-blocking
%%% query); an index of 0 or less is taken as 1, so a buggy server cannot
%%% cause a busy loop; a wakeup without a change is not an event; errors are
%%% retried with growing, jittered delays; and queries never start closer
%%% together than a minimum interval.
-module(caravan_watch).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

-export([start_link/2]).
-export([start_link/3]).
-export([stop/1]).
-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).
-export([terminate/2]).

-export_type([source/0]).

-type source() :: {consul, caravan_consul:options()} | {nomad, caravan_nomad:options()}.

%% Queries start at most this often, whatever the server answers.
-define(MIN_INTERVAL_MS, 20).
-define(BACKOFF_MIN_MS, 200).
-define(BACKOFF_MAX_MS, 15000).
%% The program takes an index below 2^63 (Consul and Nomad document an
%% unsigned 64-bit one, which real servers never take that far). Above it a
%% blocking query cannot be sent: the watch polls without one this often.
-define(MAX_INDEX, 16#7fffffffffffffff).
-define(UNBLOCKED_POLL_MS, 1000).

-record(state, {source :: source(),
                subscriber :: pid(),
                index = 0 :: non_neg_integer(),
                members :: [node()] | undefined,
                last_error :: term(),
                backoff = 0 :: non_neg_integer(),
                worker :: {pid(), reference()} | undefined,
                started = 0 :: integer(),
                %% The cluster's budget of names (caravan_cluster_names).
                guard = none :: caravan_cluster_names:guard()}).

-spec start_link(source(), pid()) -> {ok, pid()} | {error, term()}.
start_link(Source, Subscriber) ->
    start_link(Source, Subscriber, none).

%% @doc start_link/2 within a cluster's budget of names: an answer it
%% refuses is an error event, and makes no atom.
-spec start_link(source(), pid(), caravan_cluster_names:guard()) -> {ok, pid()} | {error, term()}.
start_link(Source, Subscriber, Guard) ->
    gen_server:start_link(?MODULE, {Source, Subscriber, Guard}, []).

-spec stop(pid()) -> ok.
stop(Watch) ->
    try gen_server:stop(Watch) catch exit:_ -> ok end.

-spec init({source(), pid(), caravan_cluster_names:guard()}) -> {ok, #state{}}.
init({Source, Subscriber, Guard}) ->
    process_flag(trap_exit, true),
    logger:update_process_metadata(#{caravan => watch, source => element(1, Source)}),
    monitor(process, Subscriber),
    {ok, query(#state{source = Source, subscriber = Subscriber, guard = Guard})}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_request}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {stop, normal, #state{}}.
handle_info({Ref, Result}, #state{worker = {_, Ref}} = State) ->
    {noreply, handle_result(Result, State#state{worker = undefined})};
handle_info(next, #state{worker = undefined} = State) ->
    {noreply, query(State)};
handle_info({'DOWN', _, process, Subscriber, _}, #state{subscriber = Subscriber} = State) ->
    {stop, normal, State};
handle_info({'EXIT', Pid, Reason}, #state{worker = {Pid, _}} = State) when Reason =/= normal ->
    {noreply, handle_result({error, {worker_crashed, Reason}}, State#state{worker = undefined})};
handle_info(_Msg, State) ->
    {noreply, State}.

-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{worker = {Pid, _}}) ->
    %% A normal stop does not end the linked helper: it would wait out its
    %% blocking query (up to a minute), one more process per stopped watch.
    unlink(Pid),
    exit(Pid, kill),
    ok;
terminate(_Reason, _State) ->
    ok.

%%% internal

%% The query runs in a linked helper: a blocking query takes up to a minute
%% and the watch must stay responsive (to stop, to its subscriber's exit).
query(#state{source = {Kind, Options}, index = Index} = State) ->
    Self = self(),
    Ref = make_ref(),
    Module = case Kind of consul -> caravan_consul; nomad -> caravan_nomad end,
    Pid = spawn_link(fun() -> Self ! {Ref, Module:query(Options, Index)} end),
    State#state{worker = {Pid, Ref}, started = erlang:monotonic_time(millisecond)}.

handle_result({ok, #{index := NewIndex, members := Members}},
              #state{source = {_, Options}, index = Old} = State) ->
    Index = if
                NewIndex < Old -> 0;   % went backwards: start over, without blocking
                NewIndex =< 0 -> 1;    % never 0 after an answer: 0 would not block
                NewIndex > ?MAX_INDEX -> 0; % polled (see ?MAX_INDEX); it stalled for good
                true -> NewIndex
            end,
    Interval = if
                   NewIndex > ?MAX_INDEX -> ?UNBLOCKED_POLL_MS;
                   %% A blocking query answered without progress (the same
                   %% index, or 0): a server that does not block. Consul's
                   %% docs ask clients to rate-limit: the next query starts
                   %% a wait after this one did (at least a second), as a
                   %% blocking one would (55 s: caravan_catalog's default
                   %% wait). An index that moved is no wait.
                   Old > 0, NewIndex =:= Old; Old > 0, NewIndex =< 0 ->
                       max(?UNBLOCKED_POLL_MS, maps:get(wait, Options, 55000));
                   true -> ?MIN_INTERVAL_MS
               end,
    case caravan_catalog:nodes(maps:get(basename, Options), Members, State#state.guard) of
        {ok, Nodes} ->
            State1 = case Nodes =:= State#state.members of
                         true -> State;
                         false -> notify({members, Nodes}, State#state{members = Nodes})
                     end,
            schedule(Interval, State1#state{index = Index, backoff = 0, last_error = undefined});
        {error, _} = Refused ->
            %% The index stays: the answer was not taken.
            handle_result(Refused, State)
    end;
handle_result({error, Reason}, #state{last_error = Last, backoff = Backoff} = State) ->
    ok = caravan_cluster_names:refused(State#state.guard, Reason),
    State1 = case Reason =:= Last of
                 true -> State;
                 false ->
                     ?LOG_WARNING("caravan_watch: ~0p source failed: ~0p; keeping ~b members, "
                                  "retrying", [element(1, State#state.source), Reason,
                                               length(members(State))]),
                     notify({error, Reason}, State#state{last_error = Reason})
             end,
    Next = min(?BACKOFF_MAX_MS, max(?BACKOFF_MIN_MS, Backoff * 2)),
    %% Jitter within the cap: the documented bound is BACKOFF_MAX_MS.
    Jittered = min(?BACKOFF_MAX_MS, Next + rand:uniform(Next div 4 + 1)),
    schedule(Jittered, State1#state{backoff = Next}).

%% Starts the next query no sooner than Delay after the last one started.
schedule(Delay, #state{started = Started} = State) ->
    Elapsed = erlang:monotonic_time(millisecond) - Started,
    erlang:send_after(max(0, Delay - Elapsed), self(), next),
    State.

notify(Event, #state{subscriber = Subscriber} = State) ->
    Subscriber ! {caravan_watch, self(), Event},
    State.

members(#state{members = undefined}) -> [];
members(#state{members = M}) -> M.
