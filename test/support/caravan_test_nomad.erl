%%% A Nomad HTTP API test server for exactly the endpoint caravan uses:
%%% GET /v1/service/:service_name (Nomad docs, "Services HTTP API - Read
%%% Service"): registrations shaped as the documented sample, `namespace'
%%% (default "default", "*" for all), pagination with `per_page' and
%%% `next_token' answered with X-Nomad-NextToken (Nomad docs, "HTTP API -
%%% Pagination"), blocking `index'/`wait' with X-Nomad-Index (Nomad docs,
%%% "HTTP API - Blocking Queries"), and X-Nomad-Token checked, 403
%%% "Permission denied" when wrong (Nomad docs, "HTTP API - ACLs").
-module(caravan_test_nomad).

-export([start/1]).
-export([handle/2]).

%% @doc Options as caravan_test_http:start/2; caravan_test_catalog's
%% url/1, catalog/1 and stop_server/1 take the server this returns.
-spec start(map()) -> map().
start(Options) -> caravan_test_catalog:serve(fun handle/2, Options).

-spec handle(pid(), map()) -> term().
handle(C, #{path := <<"/v1/service/", _/binary>>, query := Q} = Req) ->
    %% Peeked, not counted: guarded/5 counts the request (it was counted
    %% twice, and a watch's retries to a failing Nomad looked doubled).
    case caravan_test_catalog:peek_fault(C) of
        {endless_pages, PerPage, Counters} -> endless_page(Q, PerPage, Counters);
        {slow_empty_pages, Ms, Counters} -> empty_page(Ms, new, Counters);
        {same_token_pages, Counters} -> empty_page(0, same, Counters);
        _ -> read_service(C, Req)
    end;
handle(_C, _Req) ->
    {404, [], <<"not found">>}.

%% @doc The fault `{endless_pages, PerPage, Counters}' (set with
%% caravan_test_catalog:set_fault/2): a server that pages forever, as a
%% broken or hostile one may. Every answer holds PerPage registrations with
%% addresses never seen before and a new X-Nomad-NextToken. Counters (a
%% counters:new(2, [])) counts the queries that start a listing (no
%% next_token) in slot 1 and every page served in slot 2.
-spec endless_page(map(), pos_integer(), counters:counters_ref()) -> term().
endless_page(Q, PerPage, Counters) ->
    maps:is_key(<<"next_token">>, Q) orelse counters:add(Counters, 1, 1),
    ok = counters:add(Counters, 2, 1),
    Page = counters:get(Counters, 2),
    Regs = [registration(<<"app">>,
                         #{id => iolist_to_binary(io_lib:format("p~b-~b", [Page, I])),
                           address => iolist_to_binary(
                                        io_lib:format("10.~b.~b.~b",
                                                      [(Page bsr 8) band 255, Page band 255,
                                                       I])),
                           port => 4370, node => <<"n">>, tags => []}, 7)
            || I <- lists:seq(1, PerPage)],
    {200, [{<<"X-Nomad-Index">>, <<"7">>},
           {<<"X-Nomad-NextToken">>, <<"page-", (integer_to_binary(Page))/binary>>}],
     iolist_to_binary(caravan_test_json:encode(Regs))}.

%% The faults `{slow_empty_pages, Ms, Counters}' (each page answered after
%% Ms, empty, with a new X-Nomad-NextToken) and `{same_token_pages,
%% Counters}' (each page empty with the same token): a listing that never
%% ends, slowly or in a loop. Counters (counters:new(1, [])) counts pages.
-spec empty_page(non_neg_integer(), new | same, counters:counters_ref()) -> term().
empty_page(Ms, Tokens, Counters) ->
    ok = counters:add(Counters, 1, 1),
    timer:sleep(Ms), % the slow server itself
    Token = case Tokens of
                same -> <<"same">>;
                new -> <<"page-", (integer_to_binary(counters:get(Counters, 1)))/binary>>
            end,
    {200, [{<<"X-Nomad-Index">>, <<"7">>}, {<<"X-Nomad-NextToken">>, Token}], <<"[]">>}.

read_service(C, #{path := <<"/v1/service/", Escaped/binary>>, query := Q, headers := H}) ->
    Service = uri_string:percent_decode(Escaped),
    Token = maps:get(<<"x-nomad-token">>, H, undefined),
    caravan_test_catalog:guarded(
      C, Token, <<"Permission denied">>, Q,
      fun(Index, Wait) ->
              Namespace = maps:get(<<"namespace">>, Q, <<"default">>),
              NextToken = maps:get(<<"next_token">>, Q, <<>>),
              PerPage = binary_to_integer(maps:get(<<"per_page">>, Q, <<"0">>)),
              Render = fun(Current, Instances) ->
                               InNs = [I || I <- Instances,
                                            Namespace =:= <<"*">> orelse
                                                maps:get(namespace, I, <<"default">>)
                                                    =:= Namespace],
                               {Page, Next} = page(InNs, NextToken, PerPage),
                               {[{<<"X-Nomad-NextToken">>, Next} || Next =/= <<>>],
                                iolist_to_binary(caravan_test_json:encode(
                                                   [registration(Service, I, Current)
                                                    || I <- Page]))}
                       end,
              {Current, {NextHeader, Body}} =
                  caravan_test_catalog:query(C, Service, Index, Wait,
                                             {{Namespace, NextToken, PerPage}, Render}),
              {200, [{<<"X-Nomad-Index">>, integer_to_binary(Current)} | NextHeader], Body}
      end).

%% Items from the one whose ID is Token on; PerPage 0 means all.
page(Instances, Token, PerPage) ->
    From = lists:dropwhile(fun(#{id := Id}) -> Token =/= <<>> andalso Id < Token end, Instances),
    case PerPage > 0 andalso length(From) > PerPage of
        true ->
            {Page, [#{id := Next} | _]} = lists:split(PerPage, From),
            {Page, Next};
        false ->
            {From, <<>>}
    end.

registration(Service, I = #{id := Id, port := Port}, Index) ->
    #{<<"Address">> => maps:get(address, I),
      <<"AllocID">> => <<"177160af-26f6-619f-9c9f-5e46d1104395">>,
      <<"CreateIndex">> => Index,
      <<"Datacenter">> => <<"dc1">>,
      <<"ID">> => Id,
      <<"JobID">> => <<"example">>,
      <<"ModifyIndex">> => Index,
      <<"Namespace">> => maps:get(namespace, I, <<"default">>),
      <<"NodeID">> => maps:get(node, I),
      <<"Port">> => Port,
      <<"ServiceName">> => Service,
      <<"Tags">> => maps:get(tags, I)}.
