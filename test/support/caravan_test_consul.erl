%%% A Consul HTTP API test server for exactly the endpoint caravan uses:
%%% GET /v1/health/service/:service (Consul docs, "Health HTTP Endpoint -
%%% List Service Instances for Service"), with `passing', `tag', `dc',
%%% blocking `index'/`wait' and X-Consul-Index (Consul docs, "Blocking
%%% Queries"), and ACL tokens in X-Consul-Token or ?token= answered 403
%%% "ACL not found" when wrong (Consul docs, "ACL - Tokens"). Response
%%% entries are shaped as in the documented sample: Node (with
%%% TaggedAddresses as strings), Service (with TaggedAddresses as
%%% {address, port} objects, lower-case keys, as documented), Checks.
%%%
%%% Consistency and caching, as the docs describe them:
%%% - "Consistency Modes": `?stale' may be served by any server, so it is
%%%   answered even without a leader, with X-Consul-KnownLeader: false and
%%%   the serving server's X-Consul-LastContact (ms since it heard from the
%%%   leader; set_leader/3); `?consistent' and the default are served by
%%%   the leader (LastContact 0) and, without one, fail 500 "No cluster
%%%   leader". Every answer carries both headers and
%%%   X-Consul-Effective-Consistency (stale, consistent or leader).
%%%   `?stale' with `?consistent' is a 400 ("Cannot specify ?stale with
%%%   ?consistent, conflicting semantics.", agent/http.go).
%%% - "Agent Caching": `?cached' with `?consistent' is a 400; this endpoint
%%%   is "Background Refresh Caching": the agent answers from its cache
%%%   (X-Cache: HIT, Age: seconds since the agent lost the servers, 0 while
%%%   connected; set_age/2), and only the first request for a result after
%%%   it changed goes to the servers (X-Cache: MISS). A cached answer carries
%%%   the KnownLeader and LastContact of the fetch that filled it.
%%%   Cache-Control is ignored ("HTTP Cache-Control headers are ignored in
%%%   this mode").
%%% The agent (the state behind this) counts what clients got (requests,
%%% body bytes) and what the servers would have served (`upstream_*': every
%%% request but cache hits): stats/1. It logs each request's query
%%% parameters: queries/1.
%%% The agent's service endpoints (register, deregister, checks) are
%%% caravan_test_consul_agent's: agent/1 returns it.
-module(caravan_test_consul).
-behaviour(gen_server).

-export([start/1]).
-export([handle/2]).
-export([set_leader/3, set_age/2, queries/1, stats/1, reset_stats/1]).
-export([agent/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% queries/1 keeps the last this many.
-define(MAX_QUERIES, 1000).

%% @doc Options as caravan_test_http:start/2; caravan_test_catalog's
%% url/1, catalog/1 and stop_server/1 take the server this returns. The
%% agent ends with the catalog.
-spec start(map()) -> map().
start(Options) ->
    Catalog = caravan_test_catalog:start(),
    {ok, Agent} = gen_server:start(?MODULE, Catalog, []),
    Services = caravan_test_consul_agent:start(Catalog),
    Http = caravan_test_http:start(
             fun(#{path := <<"/v1/agent/", _/binary>>} = Req) ->
                     caravan_test_consul_agent:handle(Services, Catalog, Req);
                (Req) ->
                     handle(Catalog, Agent, Req)
             end, Options),
    #{catalog => Catalog, http => Http, agent => Agent, services => Services}.

%% @doc The agent's service endpoints (caravan_test_consul_agent).
-spec agent(map()) -> pid().
agent(#{services := Services}) -> Services.

%% @doc Whether the servers know a leader, and how long ago the server that
%% serves stale reads heard from it (X-Consul-LastContact, ms).
-spec set_leader(map(), boolean(), non_neg_integer()) -> ok.
set_leader(#{agent := A}, KnownLeader, LastContactMs) ->
    gen_server:call(A, {set, #{known_leader => KnownLeader, last_contact => LastContactMs}}).

%% @doc The Age (s) of the agent's cache hits: 0 while it reaches the servers.
-spec set_age(map(), non_neg_integer()) -> ok.
set_age(#{agent := A}, AgeS) -> gen_server:call(A, {set, #{age => AgeS}}).

%% @doc Each request's query parameters, oldest first (the last ?MAX_QUERIES).
-spec queries(map()) -> [#{binary() => binary()}].
queries(#{agent := A}) -> lists:reverse(gen_server:call(A, queries)).

%% @doc #{requests, bytes, upstream_requests, upstream_bytes, hits} since
%% the start or reset_stats/1.
-spec stats(map()) -> #{atom() => non_neg_integer()}.
stats(#{agent := A}) -> gen_server:call(A, stats).

-spec reset_stats(map()) -> ok.
reset_stats(#{agent := A}) -> gen_server:call(A, reset_stats).

%% @doc A request without an agent: a leader, no cache state, nothing logged.
-spec handle(pid(), map()) -> term().
handle(C, Req) -> handle(C, undefined, Req).

handle(C, Agent, #{path := <<"/v1/health/service/", Escaped/binary>>, query := Q, headers := H}) ->
    Service = uri_string:percent_decode(Escaped),
    Token = maps:get(<<"x-consul-token">>, H, maps:get(<<"token">>, Q, undefined)),
    Stale = maps:is_key(<<"stale">>, Q),
    Consistent = maps:is_key(<<"consistent">>, Q),
    Cached = maps:is_key(<<"cached">>, Q),
    Leader = agent(Agent, {request, Q}),
    case Leader of
        _ when Stale, Consistent ->
            {400, [], <<"Cannot specify ?stale with ?consistent, conflicting semantics.">>};
        _ when Cached, Consistent ->
            {400, [], <<"Cannot specify ?cached with ?consistent, conflicting semantics.">>};
        #{known_leader := false} when not Stale, not Cached ->
            {500, [], <<"No cluster leader">>};
        _ ->
            caravan_test_catalog:guarded(
              C, Token, <<"ACL not found">>, Q,
              fun(Index, Wait) ->
                      Passing = maps:is_key(<<"passing">>, Q) andalso
                          maps:get(<<"passing">>, Q) =/= <<"false">>,
                      Tag = maps:get(<<"tag">>, Q, undefined),
                      Render = fun(_Index, Instances) ->
                                       iolist_to_binary(caravan_test_json:encode(
                                         [entry(Service, I) || I <- Instances,
                                                               not Passing orelse
                                                                   maps:get(status, I) =:= passing,
                                                               tag_matches(Tag, I)]))
                               end,
                      {Current, Body} = caravan_test_catalog:query(C, Service, Index, Wait,
                                                                   {{Passing, Tag}, Render}),
                      Key = {Service, Passing, Tag, Stale},
                      Served = agent(Agent, {served, Key, Current, byte_size(Body), Cached}),
                      {200, [{<<"X-Consul-Index">>, integer_to_binary(Current)}
                             | meta(Leader, Stale, Consistent, Served)], Body}
              end)
    end;
handle(_C, _Agent, _Req) ->
    {404, [], <<"not found">>}.

%% Consul's setMeta and setCacheMeta (the "Consistency Modes" and "Agent
%% Caching" docs): the leader serves non-stale reads, so their LastContact is 0.
meta(#{known_leader := Known, last_contact := Contact}, Stale, Consistent, Served) ->
    Effective = if Stale -> <<"stale">>; Consistent -> <<"consistent">>; true -> <<"leader">> end,
    [{<<"X-Consul-KnownLeader">>, atom_to_binary(Known)},
     {<<"X-Consul-LastContact">>, integer_to_binary(case Stale of true -> Contact; false -> 0 end)},
     {<<"X-Consul-Effective-Consistency">>, Effective}]
        ++ case Served of
               uncached -> [];
               miss -> [{<<"X-Cache">>, <<"MISS">>}];
               {hit, Age} -> [{<<"X-Cache">>, <<"HIT">>}, {<<"Age">>, integer_to_binary(Age)}]
           end.

agent(undefined, {request, _}) -> #{known_leader => true, last_contact => 0};
agent(undefined, {served, _, _, _, true}) -> miss;
agent(undefined, {served, _, _, _, false}) -> uncached;
agent(Agent, Msg) -> gen_server:call(Agent, Msg).

%%% the agent

-spec init(pid()) -> {ok, map()}.
init(Catalog) ->
    monitor(process, Catalog),
    {ok, #{known_leader => true, last_contact => 0, age => 0, queries => [], logged => 0,
           cache => #{}, stats => zero()}}.

-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({set, Settings}, _From, S) ->
    {reply, ok, maps:merge(S, Settings)};
handle_call({request, Q}, _From, S = #{queries := Qs, logged := N}) ->
    Logged = case N >= 2 * ?MAX_QUERIES of
                 true -> #{queries => [Q | lists:sublist(Qs, ?MAX_QUERIES - 1)],
                           logged => ?MAX_QUERIES};
                 false -> #{queries => [Q | Qs], logged => N + 1}
             end,
    {reply, maps:with([known_leader, last_contact], S), maps:merge(S, Logged)};
handle_call({served, Key, Index, Bytes, Cached}, _From, S = #{cache := Cache, stats := St}) ->
    Served = case Cached of
                 false -> uncached;
                 true ->
                     case Cache of
                         #{Key := Index} -> {hit, maps:get(age, S)};
                         #{} -> miss
                     end
             end,
    Upstream = case Served of {hit, _} -> 0; _ -> 1 end,
    St1 = add(St, #{requests => 1, bytes => Bytes, upstream_requests => Upstream,
                    upstream_bytes => Upstream * Bytes, hits => 1 - Upstream}),
    Cache1 = case Cached of true -> Cache#{Key => Index}; false -> Cache end,
    {reply, Served, S#{cache := Cache1, stats := St1}};
handle_call(queries, _From, S = #{queries := Qs}) ->
    {reply, Qs, S};
handle_call(stats, _From, S = #{stats := St}) ->
    {reply, St, S};
handle_call(reset_stats, _From, S) ->
    {reply, ok, S#{stats := zero()}}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_, S) -> {noreply, S}.

-spec handle_info(term(), map()) -> {noreply, map()} | {stop, normal, map()}.
handle_info({'DOWN', _, process, _, _}, S) -> {stop, normal, S};
handle_info(_, S) -> {noreply, S}.

zero() -> #{requests => 0, bytes => 0, upstream_requests => 0, upstream_bytes => 0, hits => 0}.

add(A, B) -> maps:map(fun(K, V) -> V + maps:get(K, B) end, A).

tag_matches(undefined, _) -> true;
tag_matches(Tag, I) -> lists:member(Tag, maps:get(tags, I)).

entry(Service, I = #{id := Id, port := Port}) ->
    Address = maps:get(address, I),
    NodeAddress = maps:get(node_address, I, Address),
    #{<<"Node">> => #{<<"ID">> => <<"40e4a748-2192-161a-0510-9bf59fe950b5">>,
                      <<"Node">> => maps:get(node, I),
                      <<"Address">> => NodeAddress,
                      <<"Datacenter">> => <<"dc1">>,
                      <<"TaggedAddresses">> => maps:get(node_tagged, I,
                                                        #{<<"lan">> => NodeAddress,
                                                          <<"wan">> => NodeAddress}),
                      <<"Meta">> => #{}},
      <<"Service">> => #{<<"ID">> => Id,
                         <<"Service">> => Service,
                         <<"Tags">> => maps:get(tags, I),
                         <<"Address">> => maps:get(service_address, I, Address),
                         <<"TaggedAddresses">> => maps:get(service_tagged, I, #{}),
                         <<"Meta">> => null,
                         <<"Port">> => Port,
                         <<"Weights">> => #{<<"Passing">> => 10, <<"Warning">> => 1},
                         <<"Namespace">> => <<"default">>},
      <<"Checks">> => [#{<<"Node">> => maps:get(node, I),
                         <<"CheckID">> => <<"service:", Id/binary>>,
                         <<"Name">> => <<"Service check">>,
                         <<"Status">> => atom_to_binary(maps:get(status, I)),
                         <<"ServiceID">> => Id,
                         <<"ServiceName">> => Service}]}.

%% Go durations as Consul takes them: "10s", "5m", "1500ms".
