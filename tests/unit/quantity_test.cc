#include "spec/quantity.h"

#include <gtest/gtest.h>

using namespace trainyard::spec;

TEST(Quantity, Cpu) {
  EXPECT_EQ(parseCpuMillis("2"), 2000);
  EXPECT_EQ(parseCpuMillis("500m"), 500);
  EXPECT_EQ(parseCpuMillis("0.25"), 250);
  EXPECT_EQ(parseCpuMillis("1.5"), 1500);
  EXPECT_FALSE(parseCpuMillis("-1"));
  EXPECT_FALSE(parseCpuMillis("2x"));
  EXPECT_FALSE(parseCpuMillis(""));
  EXPECT_FALSE(parseCpuMillis("m"));
  EXPECT_FALSE(parseCpuMillis("2Gi"));
}

TEST(Quantity, Memory) {
  EXPECT_EQ(parseMemoryBytes("512Mi"), 512LL << 20);
  EXPECT_EQ(parseMemoryBytes("2Gi"), 2LL << 30);
  EXPECT_EQ(parseMemoryBytes("1G"), 1000000000LL);
  EXPECT_EQ(parseMemoryBytes("128974848"), 128974848LL);
  EXPECT_EQ(parseMemoryBytes("129e6"), 129000000LL);
  EXPECT_EQ(parseMemoryBytes("1.5Gi"), 3LL << 29);
  EXPECT_EQ(parseMemoryBytes("1E"), 1000000000000000000LL);
  EXPECT_FALSE(parseMemoryBytes("2Gx"));
  EXPECT_FALSE(parseMemoryBytes("-5Gi"));
  EXPECT_FALSE(parseMemoryBytes("Gi"));
  EXPECT_FALSE(parseMemoryBytes("1 Gi"));
  EXPECT_FALSE(parseMemoryBytes("100Ei"));  // overflows int64
}

TEST(Quantity, Format) {
  EXPECT_EQ(formatCpuMillis(2000), "2");
  EXPECT_EQ(formatCpuMillis(500), "500m");
  EXPECT_EQ(formatBytes(2LL << 30), "2Gi");
  EXPECT_EQ(formatBytes(1000), "1000");
}
