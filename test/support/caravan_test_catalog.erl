%%% The state behind the Consul and Nomad test servers: registered service
%%% instances, a raft-like index that grows with every change, and blocking
%%% queries as both products document them (Consul API docs, "Features -
%%% Blocking Queries"; Nomad API docs, "HTTP API - Blocking Queries"):
%%% - a query with index 0 (or none) answers at once;
%%% - a query whose index is lower than the current one answers at once;
%%% - otherwise (index >= current) it blocks until the current index passes
%%%   the one sent, or until `wait' runs out, and then answers with whatever
%%%   the state is, the index included (so after the index moved backwards
%%%   a waiter sees the lower index only when its wait runs out: the servers'
%%%   loops re-check "index > sent" on every change, which a lower index
%%%   never satisfies);
%%% - `wait' defaults to 5 minutes, is capped at 10 minutes, and gets up to
%%%   wait/16 of random jitter added "to spread out the wake up time of any
%%%   concurrent requests".
%%% Tests drive it: register, deregister, flip a check, move the index
%%% backwards or to 0 (the server bug Consul's "Implementation Details"
%%% tells clients to guard against), or inject a fault into the next answers.
-module(caravan_test_catalog).
-behaviour(gen_server).

-export([start/0, stop/1]).
-export([serve/2, stop_server/1, url/1, catalog/1]).
-export([register/3, deregister/3, set_status/4, touch/1, set_index/2]).
-export([set_fault/2, fault/1, set_token/2, token/1, query/5, served/1, requests/1]).
-export([faulted/1]).
-export([set_blocking/2, peek_fault/1]).
-export([guarded/5]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% Consul and Nomad: "If not set, the wait time defaults to 5 minutes",
%% "limited to 10 minutes".
-define(DEFAULT_WAIT, <<"5m">>).
-define(MAX_WAIT_MS, 600000).
%% requests/1 keeps at least this many, at most twice as many: enough for
%% any test, bounded (and cheap to keep) under the benchmarks' load.
-define(MAX_REQUESTS, 1000).

-type instance() :: #{id := binary(), address := binary(), port := 0..65535, _ => _}.

-spec start() -> pid().
start() ->
    {ok, Pid} = gen_server:start(?MODULE, [], []),
    Pid.

-spec stop(pid()) -> ok.
stop(C) -> gen_server:stop(C).

%% @doc A catalog served over HTTP by Handle(Catalog, Request) (the Consul
%% or Nomad rendering); Options as caravan_test_http:start/2.
-spec serve(fun((pid(), map()) -> term()), map()) -> map().
serve(Handle, Options) ->
    Catalog = start(),
    Http = caravan_test_http:start(fun(Req) -> Handle(Catalog, Req) end, Options),
    #{catalog => Catalog, http => Http}.

-spec stop_server(map()) -> ok.
stop_server(#{catalog := C, http := H}) ->
    caravan_test_http:stop(H),
    stop(C).

-spec url(map()) -> string().
url(#{http := H}) -> caravan_test_http:url(H).

-spec catalog(map()) -> pid().
catalog(#{catalog := C}) -> C.

-spec register(pid(), binary(), instance()) -> ok.
register(C, Service, Instance) -> gen_server:call(C, {register, Service, Instance}).

-spec deregister(pid(), binary(), binary()) -> ok.
deregister(C, Service, Id) -> gen_server:call(C, {deregister, Service, Id}).

%% @doc A health check flips: critical instances drop out of passing queries.
-spec set_status(pid(), binary(), binary(), passing | critical) -> ok.
set_status(C, Service, Id, Status) -> gen_server:call(C, {status, Service, Id, Status}).

%% @doc The index grows and waiters wake, but nothing they see changes.
-spec touch(pid()) -> ok.
touch(C) -> gen_server:call(C, touch).

%% @doc Sets the index (e.g. backwards, as after a snapshot restore, or 0).
%% Waiters are treated as on any change: only those whose index is now
%% passed wake.
-spec set_index(pid(), non_neg_integer()) -> ok.
set_index(C, N) -> gen_server:call(C, {set_index, N}).

%% @doc false: a server that never blocks (issue 18, attacker): every query
%% is answered at once with the current index, changed or not.
-spec set_blocking(pid(), boolean()) -> ok.
set_blocking(C, Blocking) -> gen_server:call(C, {set_blocking, Blocking}).

%% @doc The fault set, without counting a request (fault/1 counts one):
%% for a server that picks a whole-request fault before guarded/5 runs.
-spec peek_fault(pid()) -> term().
peek_fault(C) -> gen_server:call(C, peek_fault).

-spec set_fault(pid(), term()) -> ok.
set_fault(C, Fault) -> gen_server:call(C, {set_fault, Fault}).

-spec fault(pid()) -> term().
fault(C) -> gen_server:call(C, fault).

-spec set_token(pid(), binary() | undefined) -> ok.
set_token(C, Token) -> gen_server:call(C, {set_token, Token}).

-spec token(pid()) -> binary() | undefined.
token(C) -> gen_server:call(C, token).

%% @doc Service's instances rendered by View once the index exceeds MinIndex
%% (at once when MinIndex is 0) or WaitMs (plus jitter) passed:
%% {Index, Render(Index, Instances)}.
%% View = {Key, Render}: a rendering (the JSON body, say) is made once per
%% state and Key and shared by every waiter a change wakes, as the real
%% servers' cost per waiter is small next to encoding in Erlang; without it
%% the benchmarks measured this stand-in more than caravan.
-spec query(pid(), binary(), non_neg_integer(), non_neg_integer(),
            {term(), fun((non_neg_integer(), [instance()]) -> term())}) ->
          {non_neg_integer(), term()}.
query(C, Service, MinIndex, WaitMs0, View) ->
    WaitMs = min(WaitMs0, ?MAX_WAIT_MS),
    Jittered = WaitMs + rand:uniform(WaitMs div 16 + 1) - 1,
    gen_server:call(C, {query, Service, MinIndex, Jittered, View}, Jittered + 10000).

%% @doc What both servers do before answering: a request without the
%% token set by set_token/2 gets 403 with Denied, a fault set by
%% set_fault/2 is applied, and otherwise Answer(Index, WaitMs) runs with the
%% request's blocking-query parameters (`index', `wait').
-spec guarded(pid(), binary() | undefined, binary(), map(),
              fun((non_neg_integer(), non_neg_integer()) -> term())) -> term().
guarded(C, Token, Denied, Query, Answer) ->
    case {token(C), fault(C)} of
        {Want, _} when Want =/= undefined, Want =/= Token ->
            {403, [], Denied};
        {_, none} ->
            Answer(binary_to_integer(maps:get(<<"index">>, Query, <<"0">>)),
                   caravan_test_http:duration_ms(maps:get(<<"wait">>, Query,
                                                          ?DEFAULT_WAIT)));
        {_, Fault} ->
            caravan_test_faults:apply(Fault, C, Token)
    end.

%% @doc How many requests got a fault set by set_fault/2 (each asks fault/1
%% once): what a client's retries cost a failing server.
-spec faulted(pid()) -> non_neg_integer().
faulted(C) -> gen_server:call(C, faulted).

%% @doc How many queries were answered.
-spec served(pid()) -> non_neg_integer().
served(C) -> gen_server:call(C, served).

%% @doc The `index' each query carried, oldest first (at least the last
%% ?MAX_REQUESTS): what a client asked, for tests of its index rules.
-spec requests(pid()) -> [non_neg_integer()].
requests(C) -> lists:reverse(gen_server:call(C, requests)).

-spec init([]) -> {ok, map()}.
init([]) ->
    {ok, #{services => #{}, index => 1, waiters => [], fault => none, token => undefined,
           served => 0, faulted => 0, rendered => #{}, requests => [], logged => 0,
           blocking => true}}.

-spec handle_call(term(), gen_server:from(), map()) ->
          {reply, term(), map()} | {noreply, map()}.
handle_call({register, Service, #{id := Id} = I}, _From, S = #{services := Svcs}) ->
    Instances = maps:get(Service, Svcs, #{}),
    Full = maps:merge(#{status => passing, tags => [], node => <<"node-", Id/binary>>}, I),
    {reply, ok, changed(S#{services := Svcs#{Service => Instances#{Id => Full}}})};
handle_call({deregister, Service, Id}, _From, S = #{services := Svcs}) ->
    Instances = maps:remove(Id, maps:get(Service, Svcs, #{})),
    {reply, ok, changed(S#{services := Svcs#{Service => Instances}})};
handle_call({status, Service, Id, Status}, _From, S = #{services := Svcs}) ->
    Instances = maps:get(Service, Svcs, #{}),
    I = maps:get(Id, Instances),
    {reply, ok, changed(S#{services := Svcs#{Service => Instances#{Id => I#{status => Status}}}})};
handle_call(touch, _From, S) ->
    {reply, ok, changed(S)};
handle_call({set_index, N}, _From, S) ->
    {reply, ok, wake(S#{index := N})};
handle_call({set_blocking, B}, _From, S) ->
    {reply, ok, S#{blocking := B}};
handle_call({set_fault, F}, _From, S) ->
    {reply, ok, S#{fault := F}};
handle_call(peek_fault, _From, S = #{fault := F}) ->
    {reply, F, S};
handle_call(fault, _From, S = #{fault := none}) ->
    {reply, none, S};
handle_call(fault, _From, S = #{fault := F, faulted := N}) ->
    {reply, F, S#{faulted := N + 1}};
handle_call(faulted, _From, S = #{faulted := N}) ->
    {reply, N, S};
handle_call({set_token, T}, _From, S) ->
    {reply, ok, S#{token := T}};
handle_call(token, _From, S = #{token := T}) ->
    {reply, T, S};
handle_call(served, _From, S = #{served := N}) ->
    {reply, N, S};
handle_call(requests, _From, S = #{requests := R}) ->
    {reply, R, S};
handle_call({query, Service, MinIndex, WaitMs, View}, From, S0) ->
    S = log_request(MinIndex, S0),
    case blocks(MinIndex, S) of
        true ->
            Timer = erlang:send_after(WaitMs, self(), {wait_over, From}),
            {noreply, S#{waiters := [{From, Service, MinIndex, View, Timer}
                                     | maps:get(waiters, S)]}};
        false ->
            {Answer, S1} = answer(Service, View, S),
            {reply, Answer, count_served(S1)}
    end.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_, S) -> {noreply, S}.

-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({wait_over, From}, S = #{waiters := W}) ->
    case lists:keytake(From, 1, W) of
        {value, {From, Service, _MinIndex, View, _}, Rest} ->
            {Answer, S1} = answer(Service, View, S#{waiters := Rest}),
            gen_server:reply(From, Answer),
            {noreply, count_served(S1)};
        false ->
            {noreply, S}
    end;
handle_info(_, S) ->
    {noreply, S}.

%% Index 0 never blocks; any other blocks while it is not below the
%% current index (Consul: "wait for any changes subsequent to that index").
blocks(_MinIndex, #{blocking := false}) -> false;
blocks(MinIndex, #{index := Index}) -> MinIndex > 0 andalso MinIndex >= Index.

changed(S = #{index := I}) -> wake(S#{index := I + 1}).

%% After any change, the waiters whose index the new one passes answer;
%% the others keep waiting for their own timer.
wake(S0 = #{waiters := W}) ->
    {Stay, Go} = lists:partition(fun({_, _, MinIndex, _, _}) -> blocks(MinIndex, S0) end, W),
    S = S0#{waiters := Stay, rendered := #{}},
    lists:foldl(fun({From, Service, _MinIndex, View, T}, Acc) ->
                        erlang:cancel_timer(T),
                        {Answer, Acc1} = answer(Service, View, Acc),
                        gen_server:reply(From, Answer),
                        count_served(Acc1)
                end, S, lists:reverse(Go)).

count_served(S = #{served := N}) -> S#{served := N + 1}.

log_request(MinIndex, S = #{requests := R, logged := N}) when N >= 2 * ?MAX_REQUESTS ->
    S#{requests := [MinIndex | lists:sublist(R, ?MAX_REQUESTS - 1)], logged := ?MAX_REQUESTS};
log_request(MinIndex, S = #{requests := R, logged := N}) ->
    S#{requests := [MinIndex | R], logged := N + 1}.

%% Renderings are kept until the next change (wake/1 drops them).
answer(Service, {Key, Render}, S = #{services := Svcs, index := Index, rendered := R}) ->
    case R of
        #{{Service, Key} := Done} ->
            {{Index, Done}, S};
        #{} ->
            Instances = [I || {_, I} <- lists:sort(maps:to_list(maps:get(Service, Svcs, #{})))],
            Done = Render(Index, Instances),
            {{Index, Done}, S#{rendered := R#{{Service, Key} => Done}}}
    end.
