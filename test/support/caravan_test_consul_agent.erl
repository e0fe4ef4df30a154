%%% The local agent's service endpoints, for caravan_test_consul, as
%%% Consul's API docs describe them ("Agent Service HTTP API"):
%%% - "Register Service": PUT /v1/agent/service/register, the service
%%%   definition as JSON (ID, Name, Address, Port, Tags, Meta, Check);
%%%   ?replace-existing-checks; 200 with an empty body (as the
%%%   @hashicorp/consul-api-double file v1/agent/service/register also
%%%   answers); a definition without Name, or a TCP check without
%%%   Interval, is 400. ID defaults to Name.
%%% - "Deregister Service": PUT /v1/agent/service/deregister/:service_id,
%%%   404 for an ID the agent does not hold.
%%% - ACLs ("ACL - Tokens"; agent endpoints need service:write on the
%%%   service): with the catalog's token set, any other X-Consul-Token is
%%%   403 "Permission denied: token with AccessorID '...' lacks permission
%%%   'service:write' on ...". set_echo_token/2 makes the body repeat the
%%%   token it got: an agent (or proxy) that leaks it, for the masking tests.
%%% Each registration goes into the catalog (caravan_test_catalog), so the
%%% health API lists it, with the status of its check ("Checks"): a TCP
%%% check connects to Address:Port every Interval (first at once: Consul
%%% staggers the first run within the interval), passing on connect,
%%% critical otherwise; a TTL check is critical until reported passing
%%% ("Check HTTP API", "TTL Check Pass": PUT /v1/agent/check/pass/:check_id,
%%% the service's check being service:<ID>), and critical again when no
%%% report came for its TTL. DeregisterCriticalServiceAfter removes a service whose check has
%%% been critical that long; Consul's reaper runs every 30 s with a 1 minute
%%% minimum, this one at every check run and with no minimum, so that tests
%%% take seconds. reset/1 is an agent restarted without its registrations
%%% (its anti-entropy then removes them from the catalog). events/1 lists
%%% what happened with erlang:system_time(microsecond), for order checks
%%% against other nodes on this host.
-module(caravan_test_consul_agent).
-behaviour(gen_server).

-export([start/1, handle/3]).
-export([services/1, events/1, reset/1, set_echo_token/2, bodies/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-spec start(pid()) -> pid().
start(Catalog) ->
    {ok, Pid} = gen_server:start(?MODULE, Catalog, []),
    Pid.

%% @doc The agent's registrations: #{Id => #{name, address, port, status, ...}}.
-spec services(pid()) -> map().
services(A) -> gen_server:call(A, services).

%% @doc [{Time_us, register | deregister | reaped | reset | refused | pass
%% | ttl_expired, Id}], oldest first.
-spec events(pid()) -> [{integer(), atom(), binary()}].
events(A) -> lists:reverse(gen_server:call(A, events)).

%% @doc Every registration body received, decoded, oldest first.
-spec bodies(pid()) -> [map()].
bodies(A) -> lists:reverse(gen_server:call(A, bodies)).

-spec reset(pid()) -> ok.
reset(A) -> gen_server:call(A, reset).

-spec set_echo_token(pid(), boolean()) -> ok.
set_echo_token(A, Echo) -> gen_server:call(A, {echo_token, Echo}).

%% @doc A request to /v1/agent/service/...: {Status, Headers, Body}.
-spec handle(pid(), pid(), map()) -> {pos_integer(), list(), binary()}.
handle(A, C, #{method := 'PUT', path := Path, headers := H} = Req) ->
    Token = maps:get(<<"x-consul-token">>, H, undefined),
    case Path of
        <<"/v1/agent/service/register">> ->
            case caravan_test_json:decode(maps:get(body, Req, <<>>)) of
                {ok, #{} = Def} -> gen_server:call(A, {register, C, Token, Def});
                _ -> {400, [], <<"Request decode failed">>}
            end;
        <<"/v1/agent/service/deregister/", Escaped/binary>> ->
            gen_server:call(A, {deregister, C, Token, uri_string:percent_decode(Escaped)});
        <<"/v1/agent/check/pass/", Escaped/binary>> ->
            gen_server:call(A, {pass, C, Token, uri_string:percent_decode(Escaped)});
        _ ->
            {404, [], <<"not found">>}
    end;
handle(_A, _C, _Req) ->
    {405, [], <<"method not allowed">>}.

%%% the agent

-spec init(pid()) -> {ok, map()}.
init(Catalog) ->
    monitor(process, Catalog),
    {ok, #{catalog => Catalog, services => #{}, events => [], bodies => [], echo => false}}.

-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({register, C, Token, Def}, _From, S) ->
    Name = maps:get(<<"Name">>, Def, undefined),
    Id = maps:get(<<"ID">>, Def, Name),
    Check = maps:get(<<"Check">>, Def, null),
    S1 = S#{bodies := [Def | maps:get(bodies, S)]},
    case denied(C, Token, Name, S1) of
        {true, Reply} ->
            {reply, Reply, event(refused, Id, S1)};
        false when not is_binary(Name); Name =:= <<>> ->
            {reply, {400, [], <<"Missing service name">>}, S1};
        false when is_map(Check), is_map_key(<<"TCP">>, Check),
                   not is_map_key(<<"Interval">>, Check) ->
            {reply, {400, [], <<"Invalid check: TCP checks require an interval">>}, S1};
        false ->
            {reply, {200, [], <<>>}, add(Id, Def, S1)}
    end;
handle_call({deregister, C, Token, Id}, _From, S = #{services := Svcs}) ->
    Name = case Svcs of #{Id := #{name := N}} -> N; _ -> Id end,
    case denied(C, Token, Name, S) of
        {true, Reply} ->
            {reply, Reply, event(refused, Id, S)};
        false when is_map_key(Id, Svcs) ->
            {reply, {200, [], <<>>}, event(deregister, Id, remove(Id, S))};
        false ->
            {reply, {404, [], <<"Unknown service ID \"", Id/binary, "\"">>}, S}
    end;
handle_call({pass, C, Token, <<"service:", Id/binary>>}, _From, S = #{services := Svcs}) ->
    case Svcs of
        #{Id := #{check := #{type := ttl, ttl := Ttl}, name := Name, timer := T} = Svc} ->
            case denied(C, Token, Name, S) of
                {true, Reply} ->
                    {reply, Reply, S};
                false ->
                    _ = case T of undefined -> ok; _ -> erlang:cancel_timer(T) end,
                    _ = case maps:get(status, Svc) of
                            passing -> ok;
                            _ -> ok = caravan_test_catalog:set_status(C, Name, Id, passing)
                        end,
                    T1 = erlang:send_after(Ttl, self(), {ttl_expired, Id}),
                    {reply, {200, [], <<>>},
                     event(pass, Id, S#{services := Svcs#{Id := Svc#{status := passing,
                                                                      timer := T1}}})}
            end;
        _ ->
            {reply, {404, [], <<"Unknown check ID">>}, S}
    end;
handle_call({pass, _C, _Token, _}, _From, S) ->
    {reply, {404, [], <<"Unknown check ID">>}, S};
handle_call(services, _From, S = #{services := Svcs}) ->
    {reply, maps:map(fun(_, V) -> maps:without([timer], V) end, Svcs), S};
handle_call(events, _From, S = #{events := E}) ->
    {reply, E, S};
handle_call(bodies, _From, S = #{bodies := B}) ->
    {reply, B, S};
handle_call(reset, _From, S = #{services := Svcs}) ->
    S1 = lists:foldl(fun remove/2, S, maps:keys(Svcs)),
    {reply, ok, event(reset, <<>>, S1)};
handle_call({echo_token, E}, _From, S) ->
    {reply, ok, S#{echo := E}}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_, S) -> {noreply, S}.

-spec handle_info(term(), map()) -> {noreply, map()} | {stop, normal, map()}.
handle_info({check, Id}, S = #{services := Svcs}) ->
    case Svcs of
        #{Id := Svc} -> {noreply, run_check(Id, Svc, S)};
        _ -> {noreply, S}
    end;
handle_info({ttl_expired, Id}, S = #{catalog := C, services := Svcs}) ->
    case Svcs of
        #{Id := #{name := Name, status := passing} = Svc} ->
            ok = caravan_test_catalog:set_status(C, Name, Id, critical),
            {noreply, event(ttl_expired, Id,
                            S#{services := Svcs#{Id := Svc#{status := critical,
                                                             timer := undefined}}})};
        _ ->
            {noreply, S}
    end;
handle_info({'DOWN', _, process, _, _}, S) -> {stop, normal, S};
handle_info(_, S) -> {noreply, S}.

%%% internal

denied(C, Token, Name, #{echo := Echo}) ->
    case caravan_test_catalog:token(C) of
        undefined -> false;
        Token -> false;
        _ ->
            Shown = case Echo of
                        true when is_binary(Token) -> Token;
                        _ -> <<"00000000-0000-0000-0000-000000000002">>
                    end,
            NameText = case Name of N when is_binary(N) -> N; _ -> <<>> end,
            {true, {403, [], <<"Permission denied: token with AccessorID '", Shown/binary,
                               "' lacks permission 'service:write' on \"", NameText/binary, "\"">>}}
    end.

add(Id, Def, S = #{catalog := C, services := Svcs}) ->
    S0 = case Svcs of #{Id := _} -> remove(Id, S); _ -> S end,
    Check = case maps:get(<<"Check">>, Def, null) of
                #{<<"TCP">> := Target} = Ck ->
                    #{type => tcp, target => Target,
                      interval => ms(maps:get(<<"Interval">>, Ck)),
                      timeout => ms(maps:get(<<"Timeout">>, Ck, <<"10s">>)),
                      deregister_after => ms(maps:get(<<"DeregisterCriticalServiceAfter">>, Ck,
                                                      undefined))};
                #{<<"TTL">> := Ttl} = Ck ->
                    #{type => ttl, ttl => ms(Ttl), deregister_after =>
                          ms(maps:get(<<"DeregisterCriticalServiceAfter">>, Ck, undefined))};
                _ ->
                    #{type => none}
            end,
    Name = maps:get(<<"Name">>, Def),
    Status = case Check of #{type := none} -> passing; _ -> critical end,
    Address = maps:get(<<"Address">>, Def, <<>>),
    Port = maps:get(<<"Port">>, Def, 0),
    ok = caravan_test_catalog:register(C, Name, #{id => Id, address => Address, port => Port,
                                                  tags => maps:get(<<"Tags">>, Def, []),
                                                  status => Status}),
    Svc = #{name => Name, address => Address, port => Port, meta => maps:get(<<"Meta">>, Def, #{}),
            check => Check, status => Status, critical_since => now_ms(), timer => undefined},
    S1 = event(register, Id, S0#{services := (maps:get(services, S0))#{Id => Svc}}),
    case Check of
        #{type := tcp} -> self() ! {check, Id}, S1;
        _ -> S1
    end.

remove(Id, S = #{catalog := C, services := Svcs}) ->
    case Svcs of
        #{Id := #{name := Name, timer := T}} ->
            _ = case T of undefined -> ok; _ -> erlang:cancel_timer(T) end,
            ok = caravan_test_catalog:deregister(C, Name, Id),
            S#{services := maps:remove(Id, Svcs)};
        _ ->
            S
    end.

%% Runs in the agent: a connect bounded by the check's Timeout (short in
%% tests), to a port on this host.
run_check(Id, #{check := #{target := Target, interval := Interval, timeout := Timeout} = Ck,
                name := Name} = Svc, S = #{catalog := C, services := Svcs}) ->
    {Host, Port} = split_target(Target),
    Status = case gen_tcp:connect(Host, Port, [], min(Timeout, 2000)) of
                 {ok, Sock} -> gen_tcp:close(Sock), passing;
                 {error, _} -> critical
             end,
    Since = case {Status, maps:get(status, Svc)} of
                {critical, critical} -> maps:get(critical_since, Svc);
                _ -> now_ms()
            end,
    case Status =/= maps:get(status, Svc) of
        true -> ok = caravan_test_catalog:set_status(C, Name, Id, Status);
        false -> ok
    end,
    After = maps:get(deregister_after, Ck),
    case Status =:= critical andalso After =/= undefined andalso now_ms() - Since >= After of
        true ->
            event(reaped, Id, remove(Id, S));
        false ->
            T = erlang:send_after(Interval, self(), {check, Id}),
            S#{services := Svcs#{Id := Svc#{status := Status, critical_since := Since,
                                             timer := T}}}
    end.

split_target(Target) ->
    {match, [H, P]} = re:run(Target, "^\\[?([^\\]]*)\\]?:([0-9]+)$",
                             [{capture, all_but_first, list}]),
    {ok, Addr} = case inet:parse_address(H) of
                     {ok, _} = A -> A;
                     _ -> {ok, H}
                 end,
    {Addr, list_to_integer(P)}.

ms(undefined) -> undefined;
ms(D) -> caravan_test_http:duration_ms(D).

event(What, Id, S = #{events := E}) ->
    S#{events := [{erlang:system_time(microsecond), What, Id} | E]}.

now_ms() -> erlang:monotonic_time(millisecond).
