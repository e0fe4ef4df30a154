%%% @doc DNS discovery: SRV, A and AAAA lookups answered by the C program
%%% (c-ares), and node names built from them.
%%%
%%% With `servers => system' a name follows resolv.conf's search list and
%%% `ndots' (ares_search); servers named in the source are asked the name as
%%% written (docs/protocol.md, `addr'). /etc/hosts is never read.
%%%
%%% Consul answers `app.service.consul' (and `_app._tcp.service.consul',
%%% `tag.app.service.consul') with one SRV record per instance: its port and a
%%% target whose address Consul puts in the ADDITIONAL section. The program
%%% reads that section, decodes Consul's `<hex>.addr.' targets, and asks for
%%% the addresses of any other target. Lookups go over TCP by default: a
%%% default Consul answers plain UDP with at most 3 records and no TC flag,
%%% which would silently cap a cluster at 3 nodes.
-module(caravan_dns).

-export([lookup_srv/2]).
-export([lookup_addr/2]).
-export([discover/1]).
-export([discover/2]).
-export([types/1]).
-export([own_defaults/1]).
-export([target_host/1]).
-export([node_address/2]).
-export([valid_servers/1]).
-export([servers_or_system/1]).

-export_type([options/0, srv_record/0, type/0]).

-type type() :: a | aaaa | srv.

-type options() :: #{servers => [string() | binary()] | system,
                     resolv_conf => file:filename(),
                     timeout => pos_integer(),
                     tries => 1..10,
                     transport => tcp | udp,
                     family => inet | inet6 | any,
                     max_members => pos_integer()}.
-type srv_record() :: #{priority := 0..65535,
                        weight := 0..65535,
                        port := 0..65535,
                        target := binary(),
                        addresses := [inet:ip_address()]}.

%% The local Consul agent's DNS interface.
-define(DEFAULT_SERVERS, ["127.0.0.1:8600"]).
%% The program's limit (DNS_MAX_SERVERS in port_src/dns.h).
-define(MAX_SERVERS, 8).
-define(DEFAULT_TIMEOUT_MS, 2000).
%% Time for the reply to travel back after the program's own deadline.
-define(REPLY_MARGIN_MS, 500).
-define(OWNER, caravan_lookup).

%% @doc SRV records of Name, each with its target's addresses. A name that
%% does not exist, or has no SRV records, is `{ok, []}'.
-spec lookup_srv(Name, Options) -> {ok, [srv_record()]} | {error, caravan:error()} when
      Name :: string() | binary(),
      Options :: options().
lookup_srv(Name, Options) ->
    lookup(srv, Name, Options).

%% @doc A and/or AAAA addresses of Name.
-spec lookup_addr(Name, Options) -> {ok, [inet:ip_address()]} | {error, caravan:error()} when
      Name :: string() | binary(),
      Options :: options().
lookup_addr(Name, Options) ->
    lookup(addr, Name, Options).

%% @doc The nodes a DNS source lists, sorted, without duplicates, from the
%% records of each `type' (`srv', the default, `a', `aaaa', or a list of
%% them; one failed lookup fails the whole listing, so that a listing is
%% never half of one).
%%
%% SRV: `Basename-PORT@HOST' for each record. HOST is the target's address
%% (`name_by => address', the default; records whose target has no address
%% of the wanted `family' are left out), or the SRV target host name itself
%% with any trailing dot removed (`name_by => target', as Caravan 1.0.1
%% named nodes; such nodes must run with `-name' on that host name, and
%% every node must resolve it).
%%
%% A and AAAA: `Basename-PORT@ADDRESS' for each address, PORT being `port'
%% or, unset, this node's own (every instance runs the same). This node's
%% own address at that port is this node, however its name writes the
%% address (`0:0:0:0:0:0:0:1' and `::1' alike): never another node to dial.
%%
%% `basename' unset is this node's own (own_defaults/1).
-spec discover(Source) -> {ok, [node()]} | {error, caravan:error()} when
      Source :: #{query := string() | binary(), basename => string() | binary(),
                  type => type() | [type()], port => inet:port_number(),
                  family => inet | inet6 | any, name_by => address | target, _ => _}.
discover(Source) ->
    discover(Source, none).

%% @doc discover/1 within a cluster's budget of names: a refused answer
%% makes no atom (caravan_name:nodes/3).
-spec discover(Source, caravan_cluster_names:guard()) -> {ok, [node()]} | {error, term()} when
      Source :: #{query := string() | binary(), _ => _}.
discover(Source0, Guard) ->
    case own_defaults(Source0) of
        {ok, Source} -> discover_types(types(Source), Source, Guard, []);
        {error, {own_name, _Key, Text}} -> {error, {bad_args, Text}}
    end.

%% @doc The source's `type' as a list: `[srv]' when unset.
-spec types(map()) -> [type()].
types(Source) ->
    case maps:get(type, Source, srv) of
        Types when is_list(Types) -> Types;
        Type -> [Type]
    end.

%% @doc Source with `basename' (unset: this node's own, its name without
%% the `-PORT' that ends it) and, for A/AAAA types, `port' (unset: this
%% node's own, from its name) filled in; or why this node's own name gives
%% none: a node not distributed has no name, a name that ends in digits
%% without a `-' before them (`node3434') has no basename caravan's naming
%% rule would give back, and a name without digits has no port.
-spec own_defaults(map()) -> {ok, map()} | {error, {own_name, basename | port, binary()}}.
own_defaults(Source) ->
    Node = node(),
    WantsPort = lists:any(fun(T) -> T =/= srv end, types(Source)),
    case {maps:is_key(basename, Source), own_basename(Node)} of
        {false, {error, Why}} ->
            {error, {own_name, basename, own_text("basename is unset and ~s: set basename, or "
                                                  "name the node Basename-Port@Address "
                                                  "(myapp-4370@10.0.0.5)", [Why])}};
        {HasBase, Own} ->
            WithBase = case HasBase of
                           true -> Source;
                           false -> Source#{basename => element(2, Own)}
                       end,
            case {WantsPort, maps:is_key(port, Source), own_port(Node)} of
                {true, false, {ok, Port}} -> {ok, WithBase#{port => Port}};
                {true, false, error} ->
                    {error, {own_name, port,
                             own_text("port is unset and this node's own name (~ts) has no port "
                                      "for the A/AAAA-found nodes: name the node "
                                      "Basename-Port@Address (myapp-4370@10.0.0.5), every "
                                      "instance with the same port, or set port", [Node])}};
                _ -> {ok, WithBase}
            end
    end.

own_text(Format, Args) ->
    unicode:characters_to_binary(["options: ", io_lib:format(Format, Args)]).

own_basename(nonode@nohost) ->
    {error, "this node is not distributed (nonode@nohost), so it has no basename of its own"};
own_basename(Node) ->
    {Name, _Host} = caravan_name:split(Node),
    Digits = lists:takewhile(fun(C) -> C >= $0 andalso C =< $9 end, lists:reverse(Name)),
    case lists:nthtail(length(Digits), lists:reverse(Name)) of
        _ when Digits =:= [] -> {ok, Name};
        [$- | Base] when Base =/= [] -> {ok, lists:reverse(Base)};
        _ -> {error, io_lib:format("this node's name (~ts) does not read Basename-Port", [Node])}
    end.

own_port(nonode@nohost) ->
    error;
own_port(Node) ->
    {Name, _Host} = caravan_name:split(Node),
    case lists:takewhile(fun(C) -> C >= $0 andalso C =< $9 end, lists:reverse(Name)) of
        [] -> error;
        _ ->
            case caravan_name:port(Node, 0) of
                {ok, Port} -> {ok, Port};
                {error, _} -> error
            end
    end.

%% The family of this node's own address: with `family' unset, an A+AAAA
%% source lists the nodes of that family only. Every node is named by one
%% address (its POD_IP, its Fly private address); on a dual-stack host the
%% other family's records name no node, and dialling them would fail and be
%% retried for ever. A node named by a host name takes both.
own_family() ->
    case caravan_name:split(node()) of
        {_Name, Host} when Host =/= undefined ->
            case caravan_name:address(Host) of
                {ok, Ip} when tuple_size(Ip) =:= 4 -> inet;
                {ok, Ip} when tuple_size(Ip) =:= 8 -> inet6;
                _ -> any
            end;
        _ -> any
    end.

%% This node's address and port, when its name carries both.
own_endpoint() ->
    {_Name, Host} = caravan_name:split(node()),
    case {Host =/= undefined andalso caravan_name:address(Host), own_port(node())} of
        {{ok, Ip}, {ok, Port}} -> {Ip, Port};
        _ -> none
    end.

discover_types([], _Source, _Guard, Acc) ->
    {ok, lists:usort(lists:append(Acc))};
discover_types([srv | Rest], Source, Guard, Acc) ->
    case discover_srv(Source, Guard) of
        {ok, Nodes} -> discover_types(Rest, Source, Guard, [Nodes | Acc]);
        {error, _} = Error -> Error
    end;
discover_types(Types, Source, Guard, Acc) ->
    %% A and AAAA in one lookup: the C program asks both questions at once.
    Addr = [T || T <- Types, T =/= srv],
    case discover_addr(Addr, Source, Guard) of
        {ok, Nodes} -> discover_types(Types -- Addr, Source, Guard, [Nodes | Acc]);
        {error, _} = Error -> Error
    end.

discover_srv(#{query := Query, basename := Base} = Source, Guard) ->
    Family = maps:get(family, Source, any),
    case lookup_srv(Query, lookup_options(Source)) of
        {ok, Records} ->
            Hosts = case maps:get(name_by, Source, address) of
                        target -> [{Port, target_host(T)} || #{port := Port, target := T} <- Records];
                        address -> [{Port, Address}
                                    || #{port := Port, addresses := Addresses} <- Records,
                                       Address <- [node_address(Addresses, Family)],
                                       Address =/= none]
                    end,
            caravan_name:nodes(Base, Hosts, Guard);
        {error, _} = Error ->
            Error
    end.

discover_addr(Types, #{query := Query, basename := Base, port := Port} = Source, Guard) ->
    Family = addr_family(Types, maps:get(family, Source, own_family())),
    case lookup_addr(Query, (lookup_options(Source))#{family => Family}) of
        {ok, Addresses} ->
            Own = own_endpoint(),
            {Self, Others} = lists:partition(fun(A) -> {A, Port} =:= Own end, Addresses),
            case caravan_name:nodes(Base, [{Port, A} || A <- Others], Guard) of
                {ok, Nodes} -> {ok, [node() || Self =/= []] ++ Nodes};
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

%% The family the A/AAAA questions ask for: the types', within `family'
%% (caravan_options refuses a type that family leaves nothing of).
addr_family(Types, Family) ->
    case {lists:member(a, Types), lists:member(aaaa, Types), Family} of
        {true, true, F} -> F;
        {true, false, _} -> inet;
        {false, true, _} -> inet6
    end.

lookup_options(Source) ->
    maps:with([servers, resolv_conf, timeout, tries, transport, family, max_members], Source).

%% @doc An SRV target as a host name: without the trailing dot that marks
%% it absolute (`n1.node.dc1.consul.' -> `n1.node.dc1.consul').
-spec target_host(binary() | string()) -> binary().
target_host(Target) ->
    Bin = unicode:characters_to_binary(Target),
    Size = byte_size(Bin) - 1,
    case Bin of
        <<Host:Size/binary, $.>> when Size > 0 -> Host;
        _ -> Bin
    end.

%% The servers inet_res would ask: the nameservers inet_db is
%% configured with (erl_inetrc, `-kernel inetrc', inet_db:add_ns/2) as
%% `"IP:PORT"' strings, or `system' (the host's resolv.conf) when there are
%% none. Caravan 1.0.1 asked inet_res, and its users point inet_db at Consul.
-spec inet_db_servers() -> [string()] | system.
inet_db_servers() ->
    servers_text(inet_db:res_option(nameservers)).

%% `[{IP, Port}]' as the `servers' option takes them; `[]' is `system'.
-spec servers_text([{inet:ip_address(), inet:port_number()} | inet:ip_address()]) ->
          [string()] | system.
servers_text([]) ->
    system;
servers_text(Servers) ->
    [server_text(S) || S <- Servers].

server_text({Ip, Port}) when tuple_size(Ip) =:= 4 -> inet:ntoa(Ip) ++ ":" ++ integer_to_list(Port);
server_text({Ip, Port}) when tuple_size(Ip) =:= 8 ->
    "[" ++ inet:ntoa(Ip) ++ "]:" ++ integer_to_list(Port);
server_text(Ip) when is_tuple(Ip) -> server_text({Ip, 53}).

%% @doc A `servers' value as 1.0.1-style configs give it: none (`nil',
%% `undefined', `[]') is the nameservers inet_db is configured with, else
%% resolv.conf (as inet_res asked); one server written as a string (a
%% binary or a charlist) is that one; anything else is returned as is, for
%% valid_servers/1 or the lookup to refuse.
-spec servers_or_system(term()) -> term().
servers_or_system(None) when None =:= nil; None =:= undefined; None =:= [] ->
    inet_db_servers();
servers_or_system(Server) when is_binary(Server) ->
    [Server];
servers_or_system(Servers) when is_list(Servers) ->
    case io_lib:printable_unicode_list(Servers) of
        true -> [Servers];
        false -> Servers
    end;
servers_or_system(Other) ->
    Other.

%% @doc Whether Servers is what the `servers' option takes: `system' (or
%% `[]', the same to the program), or texts naming up to 8 servers in all,
%% each "IP", "IP:PORT" or "[IPv6]:PORT", several in one text separated
%% by commas: the forms c-ares 1.18's ares_set_servers_ports_csv reads
%% (checked against it: "[IPv6]" without a port, a zone (`%eth0') and a
%% signed port are refused there, so here too). A config can then be
%% refused at start instead of every lookup failing.
-spec valid_servers(term()) -> boolean().
valid_servers(system) ->
    true;
valid_servers(Servers) when is_list(Servers) ->
    try lists:append([server_texts(S) || S <- Servers]) of
        Texts -> length(Texts) =< ?MAX_SERVERS andalso lists:all(fun server_address/1, Texts)
    catch
        error:_ -> false
    end;
valid_servers(_) ->
    false.

%% One entry's servers: the program joins entries with commas.
server_texts(Server) ->
    case unicode:characters_to_list(Server) of
        Text when is_list(Text) -> string:split(Text, ",", all);
        _ -> error(not_text)
    end.

server_address("[" ++ Rest) ->
    case string:split(Rest, "]") of
        [Ip, ":" ++ Port] -> is_address(Ip, inet6) andalso is_port_text(Port);
        _ -> false
    end;
server_address(Text) ->
    case string:split(Text, ":", all) of
        [Ip] -> is_address(Ip, inet);
        [Ip, Port] -> is_address(Ip, inet) andalso is_port_text(Port);
        _ -> is_address(Text, inet6) % a bare IPv6 address
    end.

is_address(Text, inet) ->
    element(1, inet:parse_ipv4strict_address(Text)) =:= ok;
is_address(Text, inet6) ->
    %% OTP reads a zone (fe80::1%eth0); c-ares does not.
    not lists:member($%, Text) andalso element(1, inet:parse_ipv6strict_address(Text)) =:= ok.

is_port_text(Text) ->
    Text =/= [] andalso lists:all(fun(C) -> C >= $0 andalso C =< $9 end, Text) andalso
        length(Text) =< 5 andalso list_to_integer(Text) >= 1 andalso
        list_to_integer(Text) =< 65535.

%%%---------------------------------------------------------------------------
%%% Internal
%%%---------------------------------------------------------------------------

%% The options are checked first, by the rules every DNS source shares
%% (caravan_options): a timeout that is not an integer raised badarith here.
lookup(Op, Name, Options) ->
    case caravan_options:check(lookup, Options) of
        ok ->
            Timeout = maps:get(timeout, Options, ?DEFAULT_TIMEOUT_MS),
            case args(Name, Options, Timeout) of
                {ok, Args} ->
                    capped(caravan_port:call(?OWNER, Op, Args, Timeout + ?REPLY_MARGIN_MS),
                           caravan_options:max_members(Options));
                {error, _} = Error -> Error
            end;
        {error, Reason} ->
            {error, {bad_args, caravan_options:text(lookup, Reason)}}
    end.

%% The same cap as Consul's and Nomad's answers (max_members): records of
%% an SRV answer, addresses of an address answer.
capped({ok, Records}, Max) when length(Records) > Max ->
    {error, {too_large, unicode:characters_to_binary(
                          io_lib:format("the DNS answer lists more than ~b records "
                                        "(max_members)", [Max]))}};
capped(Result, _Max) ->
    Result.

args(Name, Options, Timeout) ->
    try
        Servers = case maps:get(servers, Options, ?DEFAULT_SERVERS) of
                      system -> [];
                      List when is_list(List) -> [unicode:characters_to_binary(S) || S <- List]
                  end,
        Base = #{name => unicode:characters_to_binary(Name),
                 servers => Servers,
                 timeout_ms => Timeout},
        Extra = maps:from_list(
                  [{K, convert(K, V)} || {K, V} <- maps:to_list(Options),
                                         lists:member(K, [tries, transport, family,
                                                          resolv_conf])]),
        {ok, maps:merge(Base, Extra)}
    catch
        error:_ -> {error, {bad_args, <<"options: servers must be a list of \"IP:PORT\" "
                                        "strings or system">>}}
    end.

convert(resolv_conf, Path) -> unicode:characters_to_binary(Path);
convert(_Key, Value) -> Value.

%% @doc The address a node is named by, of a target's addresses in any
%% order: IPv4 first unless IPv6 is asked for; `none' when the family has
%% none. Every path that names nodes by address uses it, so that a node is
%% given one name whichever path found it.
-spec node_address([inet:ip_address()], inet | inet6 | any) -> inet:ip_address() | none.
node_address(Addresses, Family) ->
    V4 = [A || A <- Addresses, tuple_size(A) =:= 4],
    V6 = [A || A <- Addresses, tuple_size(A) =:= 8],
    case {Family, V4, V6} of
        {inet6, _, [A | _]} -> A;
        {inet, [A | _], _} -> A;
        {any, [A | _], _} -> A;
        {any, [], [A | _]} -> A;
        _ -> none
    end.
