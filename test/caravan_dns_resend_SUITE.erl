%%% A lost UDP packet is sent again within the lookup's own timeout, also
%%% when that timeout is under a second (c-ares' shared channels tried for
%%% 1 s each: such a lookup got no resend, and one lost packet failed it).
%%% The responder drops the first UDP query it gets; only a resend can be
%%% answered.
-module(caravan_dns_resend_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0]).
-export([lost_packet_resent_within_a_short_timeout/1,
         lost_packet_resent_within_the_default_timeout/1,
         empty_answer_to_the_resend_is_the_answer/1,
         lost_followup_resent_within_a_short_timeout/1]).

-spec suite() -> list().
suite() ->
    [{timetrap, {minutes, 2}}, {ct_hooks, [caravan_test_app]}].

-spec all() -> list().
all() ->
    [lost_packet_resent_within_a_short_timeout, lost_packet_resent_within_the_default_timeout,
     empty_answer_to_the_resend_is_the_answer, lost_followup_resent_within_a_short_timeout].

lookup(Responder, Timeout) ->
    caravan:lookup_srv("web.service.consul",
                       #{servers => [caravan_test_dns_responder:server(Responder)],
                         transport => udp, tries => 1, timeout => Timeout}).

%% Timeouts of 800 and 300 ms: each lookup's first packet is lost, and the
%% answer to its resend comes back within the lookup's timeout.
-spec lost_packet_resent_within_a_short_timeout(list()) -> ok.
lost_packet_resent_within_a_short_timeout(_Config) ->
    lists:foreach(
      fun(Timeout) ->
              R = caravan_test_dns_responder:start({drop_first_udp, {consul, 3}}),
              Result = lookup(R, Timeout),
              ct:log("timeout ~b ms: ~p after ~p queries", [Timeout, Result,
                                                           caravan_test_dns_responder:queries(R)]),
              ?assertMatch({ok, [_, _, _]}, Result),
              ?assertMatch(#{udp := N} when N >= 2, caravan_test_dns_responder:queries(R)),
              caravan_test_dns_responder:stop(R)
      end, [800, 300]).

%% An empty answer (NOERROR, no records) to the resent copy is the answer:
%% `{ok, []}', not a timeout waiting for the copy that was lost (found by an
%% attacker: NODATA and NXDOMAIN were taken for a failed copy).
-spec empty_answer_to_the_resend_is_the_answer(list()) -> ok.
empty_answer_to_the_resend_is_the_answer(_Config) ->
    R = caravan_test_dns_responder:start({drop_first_udp, {consul, 0}}),
    Result = lookup(R, 800),
    ct:log("~p after ~p queries", [Result, caravan_test_dns_responder:queries(R)]),
    ?assertEqual({ok, []}, Result),
    ?assertMatch(#{udp := N} when N >= 2, caravan_test_dns_responder:queries(R)),
    caravan_test_dns_responder:stop(R).

%% A follow-up (the A question for an SRV target the answer carries no
%% address for) is resent as the first question is: its first packet is
%% lost, and the lookup still comes back with the target's address within
%% 800 ms. The SRV question goes over UDP and over TCP; follow-ups always
%% go over UDP. Before: the lookup ran into its timeout waiting for c-ares'
%% 1 s retry.
-spec lost_followup_resent_within_a_short_timeout(list()) -> ok.
lost_followup_resent_within_a_short_timeout(_Config) ->
    lists:foreach(
      fun(Transport) ->
              R = caravan_test_dns_responder:start({drop_first_a, {no_additional, 1}}),
              Result = caravan:lookup_srv("web.service.consul",
                                          #{servers => [caravan_test_dns_responder:server(R)],
                                            transport => Transport, tries => 1,
                                            timeout => 800, family => inet}),
              Asked = caravan_test_dns_responder:asked(R),
              ct:log("~p: ~p after ~p", [Transport, Result, Asked]),
              ?assertMatch({ok, [#{addresses := [{_, _, _, _}]}]}, Result),
              %% The lost A question and its resent copy.
              ?assertMatch([_, _], [Q || {a, _} = Q <- Asked]),
              caravan_test_dns_responder:stop(R)
      end, [udp, tcp]).

%% The default timeout (2 s) keeps its 1 s tries, and is resent as before.
-spec lost_packet_resent_within_the_default_timeout(list()) -> ok.
lost_packet_resent_within_the_default_timeout(_Config) ->
    R = caravan_test_dns_responder:start({drop_first_udp, {consul, 3}}),
    ?assertMatch({ok, [_, _, _]}, lookup(R, 2000)),
    caravan_test_dns_responder:stop(R).
