%%% A Consul HTTP API test server for exactly the endpoint caravan uses:
%%% GET /v1/health/service/:service (Consul docs, "Health HTTP Endpoint -
%%% List Service Instances for Service"), with `passing', `tag', `dc',
%%% blocking `index'/`wait' and X-Consul-Index (Consul docs, "Blocking
%%% Queries"), and ACL tokens in X-Consul-Token or ?token= answered 403
%%% "ACL not found" when wrong (Consul docs, "ACL - Tokens"). Response
%%% entries are shaped as in the documented sample: Node (with
%%% TaggedAddresses as strings), Service (with TaggedAddresses as
%%% {address, port} objects, lower-case keys, as documented), Checks.
-module(caravan_test_consul).

-export([start/1]).
-export([handle/2]).

%% @doc Options as caravan_test_http:start/2; caravan_test_catalog's
%% url/1, catalog/1 and stop_server/1 take the server this returns.
-spec start(map()) -> map().
start(Options) -> caravan_test_catalog:serve(fun handle/2, Options).

-spec handle(pid(), map()) -> term().
handle(C, #{path := <<"/v1/health/service/", Escaped/binary>>, query := Q, headers := H}) ->
    Service = uri_string:percent_decode(Escaped),
    Token = maps:get(<<"x-consul-token">>, H, maps:get(<<"token">>, Q, undefined)),
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
              {200, [{<<"X-Consul-Index">>, integer_to_binary(Current)}], Body}
      end);
handle(_C, _Req) ->
    {404, [], <<"not found">>}.

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
