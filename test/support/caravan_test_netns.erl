%%% Test hosts in network namespaces: a bridge in the root namespace at
%%% 198.18.0.1/24 (the benchmarking range, RFC 2544) and N namespaces, each
%%% with a veth into the bridge and the address 198.18.0.(10+I). Nodes run
%%% inside with `ip netns exec'. Everything is removed by teardown/1.
-module(caravan_test_netns).

-export([setup/1, teardown/1, address/2, bind_address/1, exec/2, link/3]).
-export([add_ipv6/1, address6/2]).

-define(IP, "/usr/sbin/ip").

%% @doc Creates the bridge and N namespaces, or says why it cannot.
-spec setup(pos_integer()) -> {ok, map()} | {skip, string()}.
setup(N) ->
    Tag = integer_to_list(list_to_integer(os:getpid()) rem 100000),
    Net = #{tag => Tag, count => N, bridge => "cvbr" ++ Tag},
    case run(["netns", "add", ns(Net, 0)]) of
        {ok, _} ->
            {ok, _} = run(["netns", "del", ns(Net, 0)]),
            try
                build(Net),
                {ok, Net}
            catch
                error:{ip_failed, Args, Out} ->
                    teardown(Net),
                    {skip, lists:flatten(io_lib:format("cannot build test hosts: ip ~s: ~s",
                                                       [string:join(Args, " "), Out]))}
            end;
        {error, Out} ->
            {skip, "network namespaces cannot be created here (needs root and "
                   "iproute2): " ++ Out}
    end.

build(#{bridge := Br, count := N} = Net) ->
    ok(["link", "add", Br, "type", "bridge"]),
    ok(["addr", "add", "198.18.0.1/24", "dev", Br]),
    ok(["link", "set", Br, "up"]),
    [begin
         Ns = ns(Net, I),
         Host = veth(Net, I, host),
         Peer = veth(Net, I, ns),
         ok(["netns", "add", Ns]),
         ok(["link", "add", Host, "type", "veth", "peer", "name", Peer]),
         ok(["link", "set", Peer, "netns", Ns]),
         ok(["link", "set", Host, "master", Br]),
         ok(["link", "set", Host, "up"]),
         ok(["-n", Ns, "addr", "add", address(Net, I) ++ "/24", "dev", Peer]),
         ok(["-n", Ns, "link", "set", Peer, "up"]),
         ok(["-n", Ns, "link", "set", "lo", "up"])
     end || I <- lists:seq(1, N)],
    ok.

%% @doc Adds IPv6 after setup/1: ULA (RFC 4193, fd00::/8) fd00:ca7a:TAG::1/64
%% on the bridge and fd00:ca7a:TAG::(10+I) in namespace I (address6/2),
%% without duplicate address detection (an address under DAD is not usable
%% for a second or more). TAG keeps two runs' prefixes apart.
-spec add_ipv6(map()) -> ok.
add_ipv6(#{bridge := Br, count := N} = Net) ->
    ok(["addr", "add", prefix6(Net) ++ "1/64", "dev", Br, "nodad"]),
    [ok(["-n", ns(Net, I), "addr", "add", address6(Net, I) ++ "/64", "dev", veth(Net, I, ns),
         "nodad"]) || I <- lists:seq(1, N)],
    ok.

-spec address6(map(), pos_integer()) -> string().
address6(Net, I) ->
    %% In the text form OTP writes (inet:ntoa/1), as node names must be.
    {ok, Ip} = inet:parse_ipv6strict_address(prefix6(Net) ++ integer_to_list(10 + I)),
    inet:ntoa(Ip).

prefix6(#{tag := Tag}) ->
    "fd00:ca7a:" ++ string:lowercase(integer_to_list(list_to_integer(Tag) rem 65536, 16)) ++ "::".

-spec teardown(map()) -> ok.
teardown(#{bridge := Br, count := N} = Net) ->
    [run(["netns", "del", ns(Net, I)]) || I <- lists:seq(1, N)],
    [run(["link", "del", veth(Net, I, host)]) || I <- lists:seq(1, N)],
    run(["link", "del", Br]),
    ok.

-spec address(map(), pos_integer()) -> string().
address(_Net, I) -> "198.18.0." ++ integer_to_list(10 + I).

%% @doc The root namespace's address on the bridge, where BIND listens too.
-spec bind_address(map()) -> string().
bind_address(_Net) -> "198.18.0.1".

%% @doc peer's `exec' option running a node inside namespace I.
-spec exec(map(), pos_integer()) -> {string(), [string()]}.
exec(Net, I) ->
    {?IP, ["netns", "exec", ns(Net, I), os:find_executable("erl")]}.

%% @doc Cuts namespace I off (down) or connects it again (up).
-spec link(map(), pos_integer(), up | down) -> ok.
link(Net, I, State) ->
    ok(["link", "set", veth(Net, I, host), atom_to_list(State)]).

ns(#{tag := Tag}, I) -> "caravan-" ++ Tag ++ "-" ++ integer_to_list(I).

%% Interface names are at most 15 bytes.
veth(#{tag := Tag}, I, host) -> "cvh" ++ Tag ++ "x" ++ integer_to_list(I);
veth(#{tag := Tag}, I, ns) -> "cvn" ++ Tag ++ "x" ++ integer_to_list(I).

ok(Args) ->
    case run(Args) of
        {ok, _} -> ok;
        {error, Out} -> error({ip_failed, Args, Out})
    end.

run(Args) ->
    Port = open_port({spawn_executable, ?IP}, [{args, Args}, exit_status, stderr_to_stdout,
                                               binary]),
    collect(Port, <<>>).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, <<Acc/binary, D/binary>>);
        {Port, {exit_status, 0}} -> {ok, binary_to_list(Acc)};
        {Port, {exit_status, _}} -> {error, string:trim(binary_to_list(Acc))}
    after 10000 -> {error, "ip timed out"}
    end.
