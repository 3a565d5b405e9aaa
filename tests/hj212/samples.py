"""HJ 212 packets published by the standard and by open-source implementations, verbatim."""

from __future__ import annotations

# HJ 212-2017 Annex A, the standard's own CRC example (CN 1062, set the real-time interval).
ANNEX_A = (
    b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;"
    b"Flag=5;CP=&&RtdInterval=30&&1C80\r\n"
)
# xiaoyao9184/hj-t212-parser test data: 2005-era codes (B01, 011, 060), no QN or Flag,
# DataTime with milliseconds.
T212_PARSER_LEGACY = (
    b"##0139ST=32;CN=2011;PW=123456;MN=LD130133000015;CP=&&DataTime=20160824003817000;"
    b"B01-Rtd=36.91;011-Rtd=231.0,011-Flag=N;060-Rtd=1.803,060-Flag=N&&4980\r\n"
)
# xiaoyao9184/hj-t212-parser README: a vendor code (ele01) and the CRC in lower case.
T212_PARSER_README = (
    b"##0109ST=32;CN=2011;PW=123456;MN=NJGDKYYC202101q0001w0001;CP=&&"
    b"DataTime=20210305003817000;ele01-Rtd=1;ele02-Rtd=0&&8c41\r\n"
)
# A Python socket test client: 2017 water codes; published without the closing CRLF.
PY_CLIENT_WATER = (
    b"##0321ST=32;CN=2011;PW=123456;MN=DM000001;CP=&&DataTime=20191223165100;"
    b"w01001-Rtd=15.294,w01001-Flag=N;w01006-Rtd=12.122,w01006-Flag=N;"
    b"w01010-Rtd=21.639,w01010-Flag=N;w01014-Rtd=92.088,w01014-Flag=N;"
    b"w21003-Rtd=78.741,w21003-Flag=N;w21011-Rtd=92.488,w21011-Flag=N;"
    b"w01019-Rtd=51.248,w01019-Flag=N;w01003-Rtd=3.262,w01003-Flag=N&&A141"
)
# A Netty test client (com.xmmems): hourly surface-water data with Flag=9, the version bits
# HJ 212-2025 is reported to use (this sample predates 2025: a vendor's own choice).
NETTY_HOURLY_FLAG9 = (
    b"##0561QN=20201030000000437;ST=21;CN=2061;PW=123456;MN=NM100000_0005;Flag=9;CP=&&"
    b"DataTime=20201129210001;w01010-Avg=23.1,w01010-Flag=N;w01001-Avg=7.64,w01001-Flag=N;"
    b"w01009-Avg=6.60,w01009-Flag=N;w01014-Avg=300,w01014-Flag=N;w01003-Avg=17,"
    b"w01003-Flag=N;w01019-Avg=1.4,w01019-Flag=N;w21011-Avg=0.042,w21011-Flag=N;"
    b"w21001-Avg=3.04,w21001-Flag=N;w21003-Avg=0.16,w21003-Flag=N;w20120-Avg=0.00011,"
    b"w20120-Flag=N;w20119-Avg=0.00000,w20119-Flag=N;w23002-Avg=0.0005,w23002-Flag=N;"
    b"w21016-Avg=0.002,w21016-Flag=N;w20115-Avg=0.00001,w20115-Flag=N;w20122-Avg=0.00005,"
    b"w20122-Flag=N&&4C80\r\n"
)
# A C practice repository (Tangcomefromtang/C-practice, HJ212/V2/main.c): CN 3032.
C_PRACTICE_3032 = (
    b"##0113QN=20210118201054000;ST=32;CN=3032;PW=123456;MN=20210107123456;Flag=5;CP=&&"
    b"PolId=a34004,MB_BgnAddr=192,MB_Wrt=5&&0F00\r\n"
)
# A Java socket test (com.xinaml.frame): hourly 2005-era codes. Its length field says 462
# for a 452-byte segment and its CRC 90C1 is made up (the segment's CRC is 2A80).
JAVA_LEGACY_BAD_CRC = (
    b"##0462ST=32;CN=2061;PW=123456;MN=1111;CP=&&DataTime=20180416000000;001-Cou=0.00,"
    b"001-Min=7.16,001-Avg=7.17,001-Max=7.17;B01-Cou=748.84,B01-Min=204.50,B01-Avg=208.01,"
    b"B01-Max=214.20;011-Cou=17.37,011-Min=23.20,011-Avg=23.20,011-Max=23.20;"
    b"B11-Min=21941081.00,B11-Avg=21941455.50,B11-Max=21941830.00;060-Cou=2.40,"
    b"060-Min=3.11,060-Avg=3.20,060-Max=3.31;101-Cou=0.05,101-Min=0.0620,101-Avg=0.0620,"
    b"101-Max=0.0620;065-Cou=3.00,065-Min=4.01,065-Avg=4.01,065-Max=4.01&&90C1"
)
# A Rust parser's unit test: CRC FFFF is a placeholder and the length says 200 for 151.
RUST_TEST_PLACEHOLDER_CRC = (
    b"##0200ST=31;CN=2061;PW=123456;MN=AIR001;Flag=4;CP=&&DataTime=20230601130000;"
    b"a34004-Avg=35.2;a34002-Avg=68.5;a21026-Avg=12.3;a01001-Avg=28.5;a01002-Avg=65.0&&FFFF"
)
