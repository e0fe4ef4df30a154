%%% @doc Consul as a discovery source: GET /v1/health/service/:service, the
%%% instances whose checks pass, each named `Basename-PORT@ADDRESS'.
%%%
%%% Address: Service.Address, or Node.Address when that is empty; with
%%% `tagged_address' (lan, wan, lan_ipv4, wan_ipv6...) that tagged address of
%%% the service, else of the node. Defaults follow Consul's own CLI:
%%% CONSUL_HTTP_ADDR (127.0.0.1:8500; CONSUL_HTTP_SSL=true for https),
%%% CONSUL_HTTP_TOKEN, CONSUL_CACERT, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY.
%%%
%%% Consistency (Consul API docs, "Consistency Modes", "Agent Caching"):
%%% `consistency => stale' and `cached => true' unless set (see the README,
%%% "Consul HTTP", for why); `consistency => consistent' drops `cached'
%%% (Consul refuses the two together). An answer whose
%%% X-Consul-KnownLeader is false, or whose X-Consul-LastContact (ms) or
%%% Age (s) passes `max_stale', is `{error, {stale, Detail}}': a watch
%%% and a cluster keep the listing they had.
-module(caravan_consul).

-export([discover/1]).
-export([query/2]).
-export([consistency/1]).
-export([env/0]).

-export_type([options/0, consistency/0]).

-type consistency() :: default | stale | consistent.

%% The defaults: stale reads from the local agent's cache (README, "Consul
%% HTTP"). A membership answer ~50 ms behind the leader costs nothing that
%% the next blocking query does not fix; N watches on the leader cost it
%% N full answers per change.
-define(DEFAULT_CONSISTENCY, stale).
-define(DEFAULT_CACHED, true).

-type options() :: #{service := string() | binary(),
                     basename := string() | binary(),
                     passing => boolean(),
                     tag => string() | binary(),
                     dc => string() | binary(),
                     tagged_address => string() | binary(),
                     consistency => consistency(),
                     cached => boolean(),
                     max_stale => pos_integer(),
                     max_members => pos_integer(),
                     _ => _}.

-define(ENV, #{url => {"CONSUL_HTTP_ADDR", "127.0.0.1:8500"}, ssl_var => "CONSUL_HTTP_SSL",
               token => "CONSUL_HTTP_TOKEN", ca_file => "CONSUL_CACERT",
               cert_file => "CONSUL_CLIENT_CERT", key_file => "CONSUL_CLIENT_KEY"}).

%% @doc The environment variables Consul's CLI reads, and its default
%% address: the registration (caravan_register) reaches the agent so too.
-spec env() -> #{url := {string(), string()}, atom() => string()}.
env() ->
    ?ENV.

%% @doc The consistency mode and caching Options ask for, defaults applied:
%% `consistent' is never cached unless asked (and then refused, see
%% caravan_options).
-spec consistency(map()) -> {consistency(), boolean()}.
consistency(Options) ->
    Consistency = maps:get(consistency, Options, ?DEFAULT_CONSISTENCY),
    Cached = case Consistency of
                 consistent -> maps:get(cached, Options, false);
                 _ -> maps:get(cached, Options, ?DEFAULT_CACHED)
             end,
    {Consistency, Cached}.

%% @doc The nodes Consul lists now.
-spec discover(options()) -> {ok, [node()]} | {error, caravan:error()}.
discover(Options) ->
    caravan_catalog:discover(?MODULE, Options).

%% @doc One request; a positive Index makes it a blocking query.
-spec query(options(), non_neg_integer()) -> {ok, caravan_catalog:answer()} | {error, caravan:error()}.
query(#{service := Service} = Options, Index) ->
    {Consistency, Cached} = consistency(Options),
    Extra = maps:from_list(
              [{service, Service},
               {passing, maps:get(passing, Options, true)},
               {consistency, Consistency},
               {cached, Cached}] ++
              [{max_stale_ms, Ms} || {ok, Ms} <- [maps:find(max_stale, Options)]] ++
              [{K, V} || K <- [tag, dc, tagged_address], {ok, V} <- [maps:find(K, Options)]]),
    case caravan_catalog:call(consul_health, Options, ?ENV, {Extra, Index}) of
        {ok, #{members := Members}} = Answer ->
            %% The same cap as Nomad's pages (caravan_nomad): one answer
            %% is bounded by max_bytes already, its members by this too.
            Max = caravan_options:max_members(Options),
            case length(Members) > Max of
                true ->
                    {error, {too_large, unicode:characters_to_binary(
                                          io_lib:format("Consul's answer lists more than ~b "
                                                        "members (max_members)", [Max]))}};
                false ->
                    Answer
            end;
        {error, _} = Error ->
            Error
    end.
